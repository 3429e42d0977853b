import { isPatchBackupError } from '@patch-backup/core'
import { describe, expect, it } from 'vitest'
import { caught, LODASH, type ServiceTest } from './context.js'

/** A corrupt manifest fails its own patch only. */
export function damagedManifestTests(t: ServiceTest): void {
  describe('damaged manifests', () => {
    it('throws MANIFEST_CORRUPT for that patch and keeps the others working', async (ctx) => {
      if (!t.fixture.manifests.corrupt) ctx.skip()
      await t.backups.createBackup('broken', t.key(LODASH))
      await t.backups.createBackup('fine', t.key(LODASH))
      await t.fixture.manifests.corrupt!('broken')
      expect(
        isPatchBackupError(await caught(t.backups.listBackups('broken')), 'MANIFEST_CORRUPT'),
      ).toBe(true)
      expect(
        isPatchBackupError(
          await caught(t.backups.createBackup('broken', t.key('node_modules/lodash/package.json'))),
          'MANIFEST_CORRUPT',
        ),
      ).toBe(true)
      await expect(t.backups.listBackups('fine')).resolves.toEqual([t.key(LODASH)])
      await expect(t.backups.listAllPatches()).resolves.toContain('fine')
    })
  })
}
