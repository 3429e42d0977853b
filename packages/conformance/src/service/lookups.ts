import { describe, expect, it } from 'vitest'
import { LODASH, type ServiceTest, UUID } from './context.js'

/** Reading what was backed up: lists, infos, metadata. */
export function lookupTests(t: ServiceTest): void {
  describe('lookups', () => {
    it('lists a patch’s files sorted, or undefined', async () => {
      await t.backups.createBackups(UUID, ['node_modules/lodash/package.json', LODASH])
      await expect(t.backups.listBackups(UUID)).resolves.toEqual([
        LODASH,
        'node_modules/lodash/package.json',
      ])
      await expect(t.backups.listBackups('unknown')).resolves.toBeUndefined()
    })

    it('gives BackupInfo for a known file, undefined otherwise', async () => {
      const info = await t.backups.createBackup(UUID, LODASH)
      await expect(t.backups.getBackupInfo(UUID, LODASH)).resolves.toEqual(info)
      await expect(t.backups.getBackupInfo(UUID, 'other.js')).resolves.toBeUndefined()
      await expect(t.backups.getBackupInfo('unknown', LODASH)).resolves.toBeUndefined()
    })

    it('gives the manifest, or undefined', async () => {
      await t.backups.createBackup(UUID, LODASH)
      const manifest = await t.backups.getPatchMetadata(UUID)
      expect(Object.keys(manifest!.files)).toEqual([LODASH])
      await expect(t.backups.getPatchMetadata('unknown')).resolves.toBeUndefined()
    })

    it('says whether a file has a backup', async () => {
      await t.backups.createBackup(UUID, LODASH)
      await expect(t.backups.hasBackup(UUID, LODASH)).resolves.toBe(true)
      await expect(t.backups.hasBackup(UUID, 'other.js')).resolves.toBe(false)
      await expect(t.backups.hasBackup('unknown', LODASH)).resolves.toBe(false)
    })

    it('lists every patch, sorted, or []', async () => {
      await expect(t.backups.listAllPatches()).resolves.toEqual([])
      await t.backups.createBackup('zeta', LODASH)
      await t.backups.createBackup('alpha', LODASH)
      await expect(t.backups.listAllPatches()).resolves.toEqual(['alpha', 'zeta'])
    })
  })
}
