import { createHash, randomBytes } from 'node:crypto'
import { createReadStream, createWriteStream } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import path from 'node:path'
import { pipeline } from 'node:stream/promises'

const MIB = 1024 * 1024

/**
 * Writes `mib` MiB of random bytes to `file`, streamed 1 MiB at a time. Run it in the test process,
 * not in a child whose peak RSS is measured: the generator's garbage would count as the child's.
 */
export async function writeRandomFile(file: string, mib: number): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true })
  async function* chunks() {
    for (let i = 0; i < mib; i++) yield randomBytes(MIB)
  }
  await pipeline(chunks, createWriteStream(file))
}

/** The sha256 of a file, hex, streamed. */
export async function hashFile(file: string): Promise<string> {
  const hash = createHash('sha256')
  await pipeline(createReadStream(file), hash)
  return hash.digest('hex')
}
