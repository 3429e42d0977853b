import { readdir, rm, stat } from 'node:fs/promises'
import { isPatchBackupError, sha256Integrity } from '@patch-backup/core'
import { describe, expect, it } from 'vitest'
import { caught, LODASH, type ServiceTest, UUID } from './context.js'

/** Drift-aware, atomic and undoable restores. */
export function restoreTransactionTests(t: ServiceTest): void {
  const { at, write, read } = t
  describe('drift-aware, atomic and undoable restores', () => {
    const patchAll = async (files: string[], tag = 'patched') => {
      for (const f of files) await write(f, `${tag} ${f}`)
    }

    it('tells each file as original, patched, drifted, modified or missing', async () => {
      const files = [
        t.key('s/original.js'),
        t.key('s/patched.js'),
        t.key('s/drifted.js'),
        t.key('s/missing.js'),
        t.key('s/unrecorded.js'),
      ]
      for (const f of files) await write(f, `original ${f}`)
      await t.backups.createBackups(UUID, files)
      await patchAll(files.slice(1, 4))
      await expect(t.backups.recordPatched(UUID, files.slice(0, 4))).resolves.toMatchObject({
        recorded: files.slice(0, 4),
      })
      await write('s/drifted.js', 'reinstalled by someone else')
      await rm(at('s/missing.js'))
      await write('s/unrecorded.js', 'changed without a record')
      const status = await t.backups.status(UUID)
      expect(status?.map((s) => [s.path, s.state])).toEqual([
        [t.key('s/drifted.js'), 'drifted'],
        [t.key('s/missing.js'), 'missing'],
        [t.key('s/original.js'), 'original'],
        [t.key('s/patched.js'), 'patched'],
        [t.key('s/unrecorded.js'), 'modified'],
      ])
      await expect(t.backups.status('unknown')).resolves.toBeUndefined()
      await expect(t.backups.recordPatched('unknown')).resolves.toBeUndefined()
    })

    it('refuses a drifted file with DRIFTED, and with force keeps the drifted bytes to undo to', async () => {
      const info = await t.backups.createBackup(UUID, t.key(LODASH))
      await write(LODASH, 'patched')
      await t.backups.recordPatched(UUID)
      await write(LODASH, 'reinstalled')
      const error = await caught(t.backups.restoreBackup(UUID, t.key(LODASH)))
      expect(isPatchBackupError(error, 'DRIFTED')).toBe(true)
      expect((error as Error).message).toContain(t.key(LODASH))
      expect((error as Error).message).toContain(sha256Integrity('reinstalled'))
      expect((error as Error).message).toContain(sha256Integrity('patched'))
      await expect(read(LODASH)).resolves.toBe('reinstalled')
      await expect(t.backups.restoreBackup(UUID, t.key(LODASH), { force: true })).resolves.toBe(
        true,
      )
      await expect(read(LODASH)).resolves.toBe('module.exports = "original"\n')
      await expect(t.backups.undoRestore(UUID)).resolves.toEqual({
        undone: [t.key(LODASH)],
        failed: [],
        errors: [],
      })
      await expect(read(LODASH)).resolves.toBe('reinstalled')
      expect(info.integrity).toBe(sha256Integrity('module.exports = "original"\n'))
    })

    it('undoes every file a forced file-by-file restore replaced', async () => {
      const files = [t.key(LODASH), t.key('node_modules/lodash/package.json')]
      await t.backups.createBackups(UUID, files)
      await patchAll(files)
      await t.backups.recordPatched(UUID)
      await patchAll(files, 'drifted')
      const result = await t.backups.restoreAllBackups(UUID, { force: true })
      expect(result.restored).toEqual(files)
      await expect(t.backups.undoRestore(UUID)).resolves.toMatchObject({ undone: files })
      for (const f of files) await expect(read(f)).resolves.toBe(`drifted ${f}`)
    })

    it('leaves a file that is already original alone and counts it as restored', async () => {
      await t.backups.createBackup(UUID, t.key(LODASH))
      await write(LODASH, 'patched')
      await t.backups.recordPatched(UUID)
      await write(LODASH, 'module.exports = "original"\n')
      const before = await stat(at(LODASH))
      await expect(t.backups.restoreBackup(UUID, t.key(LODASH))).resolves.toBe(true)
      expect((await stat(at(LODASH))).ino).toBe(before.ino)
    })

    it('restores all or nothing: one corrupt blob among 50 leaves all 50 as they were', async (ctx) => {
      if (!t.fixture.store.corrupt) ctx.skip()
      const files = Array.from({ length: 50 }, (_, i) =>
        t.key(`many/f${String(i).padStart(2, '0')}.js`),
      )
      for (const f of files) await write(f, `original ${f}`)
      const { files: infos } = await t.backups.createBackups(UUID, files)
      await patchAll(files)
      await t.fixture.store.corrupt!(infos[t.key('many/f37.js')]!.integrity)
      const result = await t.backups.restoreAllBackups(UUID, { atomic: true })
      expect(result.restored).toEqual([])
      expect(result.failed).toEqual([t.key('many/f37.js')])
      expect(result.errors[0]).toMatchObject({ code: 'INTEGRITY_MISMATCH' })
      for (const f of files) await expect(read(f)).resolves.toBe(`patched ${f}`)
      expect((await readdir(at('many'))).length).toBe(50)
      await expect(t.backups.recover(UUID)).resolves.toBeUndefined()
    })

    it('restores every file atomically, and undo returns every byte', async () => {
      const files = [t.key('a/one.js'), t.key('a/two.js'), t.key('b/three.js')]
      for (const f of files) await write(f, `original ${f}`)
      await t.backups.createBackups(UUID, files)
      await patchAll(files)
      await rm(at('b/three.js'))
      const result = await t.backups.restoreAllBackups(UUID, { atomic: true })
      expect(result).toMatchObject({ restored: files.slice().sort(), failed: [] })
      for (const f of files) await expect(read(f)).resolves.toBe(`original ${f}`)
      expect((await readdir(at('a'))).sort()).toEqual(['one.js', 'two.js'])
      const undone = await t.backups.undoRestore(UUID)
      expect(undone.undone).toEqual(files.slice().sort())
      await expect(read('a/one.js')).resolves.toBe(`patched ${t.key('a/one.js')}`)
      await expect(read('a/two.js')).resolves.toBe(`patched ${t.key('a/two.js')}`)
      await expect(stat(at('b/three.js'))).rejects.toMatchObject({ code: 'ENOENT' })
      await expect(t.backups.undoRestore(UUID)).resolves.toEqual({
        undone: [],
        failed: [],
        errors: [],
      })
    })

    it('refuses an atomic restore with a drifted file and changes nothing', async () => {
      await t.backups.createBackups(UUID, [
        t.key(LODASH),
        t.key('node_modules/lodash/package.json'),
      ])
      await patchAll([t.key(LODASH), t.key('node_modules/lodash/package.json')])
      await t.backups.recordPatched(UUID)
      await write(LODASH, 'drifted')
      const result = await t.backups.restoreAllBackups(UUID, { atomic: true })
      expect(result.failed).toEqual([t.key(LODASH)])
      expect(result.errors[0]).toMatchObject({ code: 'DRIFTED' })
      await expect(read('node_modules/lodash/package.json')).resolves.toBe(
        `patched ${t.key('node_modules/lodash/package.json')}`,
      )
      const forced = await t.backups.restoreAllBackups(UUID, { atomic: true, force: true })
      expect(forced.restored).toEqual([t.key(LODASH), t.key('node_modules/lodash/package.json')])
      await t.backups.undoRestore(UUID)
      await expect(read(LODASH)).resolves.toBe('drifted')
    })

    it('a later restore that fails keeps the last restore undoable', async (ctx) => {
      if (!t.fixture.store.corrupt) ctx.skip()
      const files = [t.key('u/a.js'), t.key('u/b.js')]
      for (const f of files) await write(f, `original ${f}`)
      const { files: infos } = await t.backups.createBackups(UUID, files)
      await patchAll(files, 'first')
      await t.backups.restoreAllBackups(UUID, { atomic: true })
      await patchAll(files, 'second')
      await t.fixture.store.corrupt!(infos[t.key('u/b.js')]!.integrity)
      const failed = await t.backups.restoreAllBackups(UUID, { atomic: true })
      expect(failed.failed).toEqual([t.key('u/b.js')])
      await t.backups.gc()
      await expect(t.backups.undoRestore(UUID)).resolves.toMatchObject({
        undone: files,
        failed: [],
      })
      for (const f of files) await expect(read(f)).resolves.toBe(`first ${f}`)
    })

    it('finishes a restore a crash left in its journal before recording, without hanging', async () => {
      await t.backups.createBackup(UUID, t.key(LODASH))
      await write(LODASH, 'patched')
      const manifest = await t.backups.getPatchMetadata(UUID)
      await t.fixture.manifests.repo.update(UUID, () => ({
        ...manifest!,
        restoreJournal: {
          id: 'dead',
          phase: 'staging',
          startedAt: t.clock.toISOString(),
          files: {},
        },
      }))
      await expect(t.backups.recordPatched(UUID)).resolves.toMatchObject({
        recorded: [t.key(LODASH)],
      })
      await expect(t.backups.getPatchMetadata(UUID)).resolves.not.toHaveProperty('restoreJournal')
    })

    it('cleanup frees the snapshot bytes too', async (ctx) => {
      if (!t.fixture.store.holdsContent) ctx.skip()
      await t.backups.createBackup(UUID, t.key(LODASH))
      await write(LODASH, 'bytes only a snapshot holds')
      await t.backups.restoreAllBackups(UUID, { atomic: true })
      await expect(
        t.fixture.store.holdsContent!(sha256Integrity('bytes only a snapshot holds')),
      ).resolves.toBe(true)
      await t.backups.cleanupBackups(UUID)
      await expect(
        t.fixture.store.holdsContent!(sha256Integrity('bytes only a snapshot holds')),
      ).resolves.toBe(false)
    })
  })
}
