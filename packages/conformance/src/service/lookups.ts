import { describe, expect, it } from 'vitest'
import { LODASH, type ServiceTest, UUID } from './context.js'

/** Reading what was backed up: lists, infos, metadata. */
export function lookupTests(t: ServiceTest): void {
  describe('lookups', () => {
    it('lists a patch’s files sorted, or undefined', async () => {
      await t.backups.createBackups(UUID, [
        t.key('node_modules/lodash/package.json'),
        t.key(LODASH),
      ])
      await expect(t.backups.listBackups(UUID)).resolves.toEqual([
        t.key(LODASH),
        t.key('node_modules/lodash/package.json'),
      ])
      await expect(t.backups.listBackups('unknown')).resolves.toBeUndefined()
    })

    it('gives BackupInfo for a known file, undefined otherwise', async () => {
      const info = await t.backups.createBackup(UUID, t.key(LODASH))
      await expect(t.backups.getBackupInfo(UUID, t.key(LODASH))).resolves.toEqual(info)
      await expect(t.backups.getBackupInfo(UUID, t.key('other.js'))).resolves.toBeUndefined()
      await expect(t.backups.getBackupInfo('unknown', t.key(LODASH))).resolves.toBeUndefined()
    })

    it('gives the manifest, or undefined', async () => {
      await t.backups.createBackup(UUID, t.key(LODASH))
      const manifest = await t.backups.getPatchMetadata(UUID)
      expect(Object.keys(manifest!.files)).toEqual([t.key(LODASH)])
      await expect(t.backups.getPatchMetadata('unknown')).resolves.toBeUndefined()
    })

    it('says whether a file has a backup', async () => {
      await t.backups.createBackup(UUID, t.key(LODASH))
      await expect(t.backups.hasBackup(UUID, t.key(LODASH))).resolves.toBe(true)
      await expect(t.backups.hasBackup(UUID, t.key('other.js'))).resolves.toBe(false)
      await expect(t.backups.hasBackup('unknown', t.key(LODASH))).resolves.toBe(false)
    })

    it('lists every patch, sorted, or []', async () => {
      await expect(t.backups.listAllPatches()).resolves.toEqual([])
      await t.backups.createBackup('zeta', t.key(LODASH))
      await t.backups.createBackup('alpha', t.key(LODASH))
      await expect(t.backups.listAllPatches()).resolves.toEqual(['alpha', 'zeta'])
    })
  })
}
