import { randomBytes } from 'node:crypto'
import { link, readdir, readFile, rm, stat, symlink } from 'node:fs/promises'
import path from 'node:path'
import { isPatchBackupError } from '@patch-backup/core'
import { describe, expect, it, type TestContext } from 'vitest'
import { caught, LODASH, type ServiceTest, UUID } from './context.js'

/** Restoring one file or a whole patch: bytes, modes, links, what fails and why. */
export function restoreTests(t: ServiceTest): void {
  const { at, write, read } = t
  /**
   * Backs up LODASH, writes `patched` over it and damages the stored bytes with the fixture's
   * `damage` hook (skipping the test without one): what restoring LODASH then throws.
   */
  const restoreDamaged = async (ctx: TestContext, damage: 'corrupt' | 'lose', patched: string) => {
    const hook = t.fixture.store[damage]
    if (!hook) ctx.skip()
    const info = await t.backups.createBackup(UUID, t.key(LODASH))
    await write(LODASH, patched)
    await hook!(info.integrity)
    return caught(t.backups.restoreBackup(UUID, t.key(LODASH)))
  }

  describe('restoreBackup', () => {
    it('puts the original bytes back and returns true', async () => {
      await t.backups.createBackup(UUID, t.key(LODASH))
      await write(LODASH, 'patched!')
      await expect(t.backups.restoreBackup(UUID, t.key(LODASH))).resolves.toBe(true)
      await expect(read(LODASH)).resolves.toBe('module.exports = "original"\n')
    })

    it('returns false for an unknown patch or file', async () => {
      await expect(t.backups.restoreBackup('no-such-patch', t.key(LODASH))).resolves.toBe(false)
      await t.backups.createBackup(UUID, t.key(LODASH))
      await expect(t.backups.restoreBackup(UUID, t.key('other.js'))).resolves.toBe(false)
    })

    it('throws INTEGRITY_MISMATCH on rotten bytes and leaves the target untouched', async (ctx) => {
      const error = await restoreDamaged(ctx, 'corrupt', 'patched content')
      expect(isPatchBackupError(error, 'INTEGRITY_MISMATCH')).toBe(true)
      await expect(read(LODASH)).resolves.toBe('patched content')
      expect((await readdir(path.dirname(at(LODASH)))).sort()).toEqual(['index.js', 'package.json'])
    })

    it('throws BLOB_MISSING when the stored bytes are gone', async (ctx) => {
      const error = await restoreDamaged(ctx, 'lose', 'patched')
      expect(isPatchBackupError(error, 'BLOB_MISSING')).toBe(true)
      await expect(read(LODASH)).resolves.toBe('patched')
    })

    it('recreates missing parent directories', async () => {
      await t.backups.createBackup(UUID, t.key(LODASH))
      await rm(at('node_modules'), { recursive: true })
      await t.backups.restoreBackup(UUID, t.key(LODASH))
      await expect(read(LODASH)).resolves.toBe('module.exports = "original"\n')
    })

    it('keeps the mode of the backed-up file', async () => {
      await write('bin/tool.sh', '#!/bin/sh\necho hi\n', 0o755)
      await t.backups.createBackup(UUID, t.key('bin/tool.sh'))
      await write('bin/tool.sh', 'patched', 0o600)
      await t.backups.restoreBackup(UUID, t.key('bin/tool.sh'))
      expect((await stat(at('bin/tool.sh'))).mode & 0o777).toBe(0o755)
    })

    it('replaces a hardlinked target instead of writing through it', async () => {
      await t.backups.createBackup(UUID, t.key(LODASH))
      await write(LODASH, 'patched shared')
      await link(at(LODASH), at('elsewhere.js'))
      await t.backups.restoreBackup(UUID, t.key(LODASH))
      await expect(read(LODASH)).resolves.toBe('module.exports = "original"\n')
      await expect(read('elsewhere.js')).resolves.toBe('patched shared')
    })

    it('replaces a symlink at the target instead of following it', async () => {
      await t.backups.createBackup(UUID, t.key(LODASH))
      await write('victim.js', 'do not touch')
      await rm(at(LODASH))
      await symlink(at('victim.js'), at(LODASH))
      await t.backups.restoreBackup(UUID, t.key(LODASH))
      await expect(read('victim.js')).resolves.toBe('do not touch')
      await expect(read(LODASH)).resolves.toBe('module.exports = "original"\n')
    })

    it('leaves no temp file beside the target', async () => {
      await t.backups.createBackup(UUID, t.key(LODASH))
      await t.backups.restoreBackup(UUID, t.key(LODASH))
      expect((await readdir(path.dirname(at(LODASH)))).sort()).toEqual(['index.js', 'package.json'])
    })

    it('restores a 3 MiB binary file byte for byte', async () => {
      const bytes = randomBytes(3 * 1024 * 1024)
      await write('big.bin', bytes)
      await t.backups.createBackup(UUID, t.key('big.bin'))
      await write('big.bin', 'patched')
      await t.backups.restoreBackup(UUID, t.key('big.bin'))
      expect((await readFile(at('big.bin'))).equals(bytes)).toBe(true)
    })
  })

  describe('restoreAllBackups', () => {
    it('restores every file of the patch, sorted', async () => {
      await t.backups.createBackups(UUID, [
        t.key(LODASH),
        t.key('node_modules/lodash/package.json'),
      ])
      await write(LODASH, 'x')
      await write('node_modules/lodash/package.json', 'y')
      await expect(t.backups.restoreAllBackups(UUID)).resolves.toEqual({
        restored: [t.key(LODASH), t.key('node_modules/lodash/package.json')],
        failed: [],
        errors: [],
      })
      await expect(read('node_modules/lodash/package.json')).resolves.toBe('{"name":"lodash"}\n')
    })

    it('returns empty lists for an unknown patch', async () => {
      await expect(t.backups.restoreAllBackups('nothing-here')).resolves.toEqual({
        restored: [],
        failed: [],
        errors: [],
      })
    })

    it('restores the rest and explains each failure', async (ctx) => {
      if (!t.fixture.store.corrupt) ctx.skip()
      const { files } = await t.backups.createBackups(UUID, [
        t.key(LODASH),
        t.key('node_modules/lodash/package.json'),
      ])
      await write(LODASH, 'patched')
      await write('node_modules/lodash/package.json', 'patched')
      await t.fixture.store.corrupt!(files[t.key(LODASH)]!.integrity)
      const result = await t.backups.restoreAllBackups(UUID)
      expect(result.restored).toEqual([t.key('node_modules/lodash/package.json')])
      expect(result.failed).toEqual([t.key(LODASH)])
      expect(result.errors[0]).toMatchObject({ path: t.key(LODASH), code: 'INTEGRITY_MISMATCH' })
      await expect(read(LODASH)).resolves.toBe('patched')
    })
  })
}
