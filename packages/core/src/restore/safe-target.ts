import { randomBytes } from 'node:crypto'
import { chmod, lstat, mkdir, open, realpath, rename, rm, stat } from 'node:fs/promises'
import path from 'node:path'
import type { Readable, Transform } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { PatchBackupError } from '../errors.js'
import { isInside } from '../file-path.js'

function outside(target: string, through: string, root: string): PatchBackupError {
  return new PatchBackupError(
    'INVALID_PATH',
    `Refusing to touch ${target}: ${through} leads outside the project root ${root}. Remove the symlink or restore from another cwd.`,
    { path: target },
  )
}

/**
 * Creates the missing parent directories of `target` one level at a time, refusing any
 * existing component that is a symlink leading outside `realRoot` (mkdir -p would follow it).
 */
export async function ensureParentInside(
  root: string,
  realRoot: string,
  target: string,
): Promise<void> {
  const parts = path.relative(root, path.dirname(target)).split(path.sep).filter(Boolean)
  let current = root
  for (const part of parts) {
    current = path.join(current, part)
    const info = await lstat(current).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return undefined
      throw error
    })
    if (!info) {
      await mkdir(current).catch((error: NodeJS.ErrnoException) => {
        if (error.code !== 'EEXIST') throw error
      })
      continue
    }
    if (info.isSymbolicLink()) {
      const resolved = await realpath(current)
      if (!isInside(realRoot, resolved)) throw outside(target, current, realRoot)
    }
  }
}

/** Refuses a source file whose real location (after symlinks) is outside the project. */
export async function assertSourceInside(realRoot: string, source: string): Promise<void> {
  const resolved = await realpath(source)
  if (!isInside(realRoot, resolved)) throw outside(source, resolved, realRoot)
}

async function currentMode(target: string): Promise<number | undefined> {
  try {
    return (await stat(target)).mode & 0o7777
  } catch {
    return undefined
  }
}

/** Bytes queued for the disk before the source is paused: lets reading, hashing and writing overlap. */
const WRITE_QUEUE = 2 * 1024 * 1024

/** Opens the bytes to write; called only once the file to write them into exists. */
export type OpenSource = () => Promise<Readable>

/**
 * Writes the bytes `openSource` gives (through `through`) into `file`, which must not exist yet,
 * then gives it `mode`. The file is created before the source is opened, so a stream error never
 * goes unheard while the file is being created, and on failure the file is always there to remove.
 */
export async function writeNewFile(
  file: string,
  openSource: OpenSource,
  mode: number,
  through: Transform[] = [],
): Promise<void> {
  const handle = await open(file, 'wx', 0o600)
  let source: Readable | undefined
  try {
    source = await openSource()
    await pipeline([source, ...through, handle.createWriteStream({ highWaterMark: WRITE_QUEUE })])
    // After the write: writing clears setuid and setgid bits.
    await chmod(file, mode)
  } catch (error) {
    source?.destroy()
    await handle.close().catch(() => {})
    await rm(file, { force: true })
    throw error
  }
}

/**
 * Writes the bytes to a temp file beside `target`, then renames it over the target. The target
 * is never half-written, and a symlink or hardlink at the target is replaced, not written through.
 */
export async function writeAtomically(
  target: string,
  openSource: OpenSource,
  mode?: number,
  through: Transform[] = [],
): Promise<void> {
  const temp = path.join(path.dirname(target), `.pb-${randomBytes(8).toString('hex')}.tmp`)
  const finalMode = mode ?? (await currentMode(target)) ?? 0o644
  await writeNewFile(temp, openSource, finalMode, through)
  try {
    await rename(temp, target)
  } catch (error) {
    await rm(temp, { force: true })
    throw error
  }
}
