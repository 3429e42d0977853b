import { isPatchBackupError } from '@patch-backup/core'
import { describe, expect, it } from 'vitest'
import { BAD_UUIDS, caught, LODASH, type ServiceTest, UUID } from './context.js'

/** Bad uuids and paths are refused at the edge, before anything is touched. */
export function badInputTests(t: ServiceTest): void {
  describe('bad input', () => {
    for (const uuid of BAD_UUIDS) {
      it(`refuses uuid ${JSON.stringify(uuid.slice(0, 24))} with INVALID_UUID before touching anything`, async () => {
        for (const call of [
          () => t.backups.createBackup(uuid, t.key(LODASH)),
          () => t.backups.restoreBackup(uuid, t.key(LODASH)),
          () => t.backups.listBackups(uuid),
          () => t.backups.cleanupBackups(uuid),
          () => t.backups.restoreAllBackups(uuid),
        ]) {
          expect(isPatchBackupError(await caught(call()), 'INVALID_UUID')).toBe(true)
        }
        await expect(t.backups.listAllPatches()).resolves.toEqual([])
      })
    }

    it('refuses a path with NUL with INVALID_PATH', async () => {
      expect(
        isPatchBackupError(await caught(t.backups.createBackup(UUID, 'a\0b.js')), 'INVALID_PATH'),
      ).toBe(true)
    })

    if (t.mode === 'confined') {
      it('refuses paths outside the project with INVALID_PATH', async () => {
        for (const bad of ['../outside.js', '/etc/passwd', 'node_modules/../../x.js', '.']) {
          expect(
            isPatchBackupError(await caught(t.backups.createBackup(UUID, bad)), 'INVALID_PATH'),
            bad,
          ).toBe(true)
        }
        await expect(t.backups.listAllPatches()).resolves.toEqual([])
      })
    } else {
      it('refuses a directory or the file system root with INVALID_PATH', async () => {
        for (const bad of ['.', '/', `${t.dir}/`, `${t.dir}/node_modules/..`]) {
          const error = await caught(t.backups.createBackup(UUID, bad))
          expect(
            isPatchBackupError(error, 'INVALID_PATH') ||
              isPatchBackupError(error, 'SOURCE_UNREADABLE'),
            bad,
          ).toBe(true)
        }
        await expect(t.backups.listAllPatches()).resolves.toEqual([])
      })
    }
  })
}
