import { describe, expect, it } from 'vitest'
import { LODASH, type ServiceTest, UUID } from './context.js'

/** Removing a patch and freeing the bytes no other patch uses. */
export function cleanupTests(t: ServiceTest): void {
  const { write, read } = t
  describe('cleanupBackups', () => {
    it('removes the patch and frees its bytes', async () => {
      const info = await t.backups.createBackup(UUID, t.key(LODASH))
      await expect(t.backups.cleanupBackups(UUID)).resolves.toBe(true)
      await expect(t.backups.listAllPatches()).resolves.toEqual([])
      await expect(t.backups.restoreBackup(UUID, t.key(LODASH))).resolves.toBe(false)
      if (t.fixture.store.holdsContent)
        await expect(t.fixture.store.holdsContent(info.integrity)).resolves.toBe(false)
    })

    it('returns false for an unknown patch', async () => {
      await expect(t.backups.cleanupBackups('unknown')).resolves.toBe(false)
    })

    it('never frees bytes another patch still needs', async () => {
      const info = await t.backups.createBackup('first', t.key(LODASH))
      await t.backups.createBackup('second', t.key(LODASH))
      await t.backups.cleanupBackups('first')
      if (t.fixture.store.holdsContent)
        await expect(t.fixture.store.holdsContent(info.integrity)).resolves.toBe(true)
      await write(LODASH, 'patched')
      await expect(t.backups.restoreBackup('second', t.key(LODASH))).resolves.toBe(true)
      await expect(read(LODASH)).resolves.toBe('module.exports = "original"\n')
    })

    it('lets the same uuid be backed up again afterwards', async () => {
      await t.backups.createBackup(UUID, t.key(LODASH))
      await t.backups.cleanupBackups(UUID)
      await write(LODASH, 'new original')
      await t.backups.createBackup(UUID, t.key(LODASH))
      await write(LODASH, 'patched')
      await t.backups.restoreBackup(UUID, t.key(LODASH))
      await expect(read(LODASH)).resolves.toBe('new original')
    })
  })
}
