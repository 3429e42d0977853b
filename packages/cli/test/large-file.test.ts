import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { hashFile, runNode, writeRandomFile } from '@patch-backup/conformance'
import { describe, expect, it } from 'vitest'

const script = fileURLToPath(new URL('./fixtures/large-file.mjs', import.meta.url))
const MIB = 1024 * 1024

const run = (args: string[]) => runNode(script, args)

describe('large files stream', () => {
  it('backs up and restores a 512 MiB file under 150 MiB RSS', { timeout: 300_000 }, async () => {
    const work = await mkdtemp(path.join(os.tmpdir(), 'pb-large-'))
    try {
      const file = path.join(work, 'project', 'big.bin')
      await writeRandomFile(file, 512)
      const before = await hashFile(file)
      const { code, stdout, stderr } = await run([work])
      expect(code, stderr).toBe(0)
      const report = JSON.parse(stdout) as {
        bytes: number
        maxRssBytes: number
      }
      console.log(`512 MiB backup + restore: peak RSS ${(report.maxRssBytes / MIB).toFixed(1)} MiB`)
      expect(report.bytes).toBe(512 * MIB)
      expect(await hashFile(file)).toBe(before)
      expect(report.maxRssBytes).toBeLessThan(150 * MIB)
    } finally {
      await rm(work, { recursive: true, force: true })
    }
  })
})
