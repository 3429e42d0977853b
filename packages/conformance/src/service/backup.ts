import path from 'node:path'
import { isPatchBackupError, sha256Integrity } from '@patch-backup/core'
import { describe, expect, it } from 'vitest'
import { caught, LODASH, type ServiceTest, UUID } from './context.js'

/** Backing up: one file, a batch, what is kept and what is refused. */
export function backupTests(t: ServiceTest): void {
  const { at, write, read } = t
  describe('createBackup', () => {
    it('records the file in the seed format and returns its BackupInfo', async () => {
      const info = await t.backups.createBackup(UUID, t.key(LODASH))
      expect(info).toMatchObject({
        integrity: sha256Integrity('module.exports = "original"\n'),
        size: 28,
        backedUpAt: '2025-01-14T12:00:00.000Z',
        originalPath: t.key(LODASH),
      })
      const manifest = await t.backups.getPatchMetadata(UUID)
      expect(manifest).toMatchObject({ uuid: UUID, patchedAt: '2025-01-14T12:00:00.000Z' })
      expect(manifest?.files[t.key(LODASH)]).toEqual(info)
    })

    it('throws SOURCE_UNREADABLE with the cause for a missing file, and writes nothing', async () => {
      const error = await caught(t.backups.createBackup(UUID, t.key('node_modules/nope.js')))
      expect(isPatchBackupError(error, 'SOURCE_UNREADABLE')).toBe(true)
      expect((error as Error).cause).toMatchObject({ code: 'ENOENT' })
      await expect(t.backups.listAllPatches()).resolves.toEqual([])
    })

    it('throws SOURCE_UNREADABLE for a directory', async () => {
      const error = await caught(t.backups.createBackup(UUID, 'node_modules/lodash/../lodash/x/..'))
      expect(isPatchBackupError(error, 'SOURCE_UNREADABLE')).toBe(true)
    })

    it('keeps the first (pre-patch) bytes on a second backup', async () => {
      const first = await t.backups.createBackup(UUID, t.key(LODASH))
      await write(LODASH, 'patched\n')
      t.clock = new Date('2025-02-01T00:00:00.000Z')
      await expect(t.backups.createBackup(UUID, t.key(LODASH))).resolves.toEqual(first)
      await t.backups.restoreBackup(UUID, t.key(LODASH))
      await expect(read(LODASH)).resolves.toBe('module.exports = "original"\n')
    })

    it('replaces the backup with { overwrite: true }', async () => {
      await t.backups.createBackup(UUID, t.key(LODASH))
      await write(LODASH, 'second\n')
      const second = await t.backups.createBackup(UUID, t.key(LODASH), { overwrite: true })
      expect(second.integrity).toBe(sha256Integrity('second\n'))
      await write(LODASH, 'third\n')
      await t.backups.restoreBackup(UUID, t.key(LODASH))
      await expect(read(LODASH)).resolves.toBe('second\n')
    })

    it('normalizes the path it records', async () => {
      await write('b.js', 'b')
      await t.backups.createBackup(UUID, t.key('./a/../b.js'))
      await t.backups.createBackup(UUID, t.key('node_modules\\lodash\\package.json'))
      await expect(t.backups.listBackups(UUID)).resolves.toEqual([
        t.key('b.js'),
        t.key('node_modules/lodash/package.json'),
      ])
      await expect(t.backups.hasBackup(UUID, t.key('b.js'))).resolves.toBe(true)
    })

    it('accepts an absolute path inside the project', async () => {
      await t.backups.createBackup(UUID, at(LODASH))
      await expect(t.backups.hasBackup(UUID, at(LODASH))).resolves.toBe(true)
    })

    if (t.mode === 'confined') {
      it('keys a file by its project-relative path however it is spelled, and records the root', async () => {
        await t.backups.createBackup(UUID, at(LODASH))
        await write(LODASH, 'patched')
        await t.backups.createBackup(UUID, `node_modules/../${LODASH}`)
        await expect(t.backups.listBackups(UUID)).resolves.toEqual([LODASH])
        await expect(t.backups.hasBackup(UUID, LODASH)).resolves.toBe(true)
        const manifest = await t.backups.getPatchMetadata(UUID)
        expect(manifest?.projectRoot).toBe(t.dir)
        await t.backups.restoreBackup(UUID, at(LODASH))
        await expect(read(LODASH)).resolves.toBe('module.exports = "original"\n')
      })

      it('finds a file an unconfined caller keyed by its absolute path, under either spelling', async () => {
        const seed = t.open({ projectRoot: undefined })
        await seed.createBackup(UUID, at(LODASH))
        await write(LODASH, 'patched')
        await t.backups.createBackup(UUID, LODASH)
        await expect(t.backups.listBackups(UUID)).resolves.toEqual([at(LODASH)])
        await expect(t.backups.hasBackup(UUID, LODASH)).resolves.toBe(true)
        await expect(t.backups.restoreBackup(UUID, LODASH)).resolves.toBe(true)
        await expect(read(LODASH)).resolves.toBe('module.exports = "original"\n')
      })
    } else {
      it('keeps an absolute path absolute as the key, and records no project root', async () => {
        const info = await t.backups.createBackup(UUID, at(LODASH))
        expect(info.originalPath).toBe(at(LODASH))
        expect(path.isAbsolute(info.originalPath)).toBe(true)
        const manifest = await t.backups.getPatchMetadata(UUID)
        expect(Object.keys(manifest?.files ?? {})).toEqual([at(LODASH)])
        expect(manifest).not.toHaveProperty('projectRoot')
      })
    }

    it('records all 100 files of 100 concurrent calls', async () => {
      const files = Array.from({ length: 100 }, (_, i) => t.key(`node_modules/pkg/f${i}.js`))
      await Promise.all(files.map((f, i) => write(f, `file ${i}`)))
      await Promise.all(files.map((f) => t.backups.createBackup(UUID, f)))
      await expect(t.backups.listBackups(UUID)).resolves.toEqual([...files].sort())
    })

    it('backs up an empty file', async () => {
      await write('empty.txt', '')
      await expect(t.backups.createBackup(UUID, t.key('empty.txt'))).resolves.toMatchObject({
        size: 0,
      })
      await write('empty.txt', 'not empty')
      await t.backups.restoreBackup(UUID, t.key('empty.txt'))
      await expect(read('empty.txt')).resolves.toBe('')
    })
  })

  describe('createBackups', () => {
    it('backs up a batch in one call and reports each failure', async () => {
      const result = await t.backups.createBackups(UUID, [
        t.key(LODASH),
        t.key('missing.js'),
        t.key('node_modules/lodash/package.json'),
      ])
      expect(result.backedUp).toEqual([t.key(LODASH), t.key('node_modules/lodash/package.json')])
      expect(result.failed).toEqual([t.key('missing.js')])
      expect(result.errors[0]).toMatchObject({
        path: t.key('missing.js'),
        code: 'SOURCE_UNREADABLE',
      })
      await expect(t.backups.listBackups(UUID)).resolves.toEqual([
        t.key(LODASH),
        t.key('node_modules/lodash/package.json'),
      ])
    })

    it('keeps entries that were already backed up', async () => {
      const first = await t.backups.createBackup(UUID, t.key(LODASH))
      await write(LODASH, 'patched')
      const result = await t.backups.createBackups(UUID, [t.key(LODASH)])
      expect(result.files[t.key(LODASH)]).toEqual(first)
    })
  })
}
