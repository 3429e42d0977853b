import { readdir, readFile, rm, stat } from 'node:fs/promises'
import os from 'node:os'
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
    /** Files backed up, patched, then restored all or nothing once: undo would patch them again. */
    const restoredOnce = async (names: string[]) => {
      const files = names.map((name) => t.key(name))
      for (const f of files) await write(f, `original ${f}`)
      await t.backups.createBackups(UUID, files)
      await patchAll(files)
      await t.backups.restoreAllBackups(UUID, { atomic: true })
      return files
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

    it('keeps the small files an atomic restore replaces in a few packs, and undo returns each byte and mode', async () => {
      const files = Array.from({ length: 120 }, (_, i) => t.key(`packs/d${i % 7}/f${i}.js`))
      for (const f of files) await write(f, `original ${f}`)
      await t.backups.createBackups(UUID, files)
      // Patched bytes of every kind a pack holds: empty, small, one too large for a pack, modes.
      const patched = (i: number) =>
        i === 0 ? '' : i === 1 ? 'x'.repeat(300 * 1024) : `patched ${i} `.repeat(i)
      for (const [i, f] of files.entries()) await write(f, patched(i), i % 2 ? 0o755 : 0o640)
      const result = await t.backups.restoreAllBackups(UUID, { atomic: true })
      expect(result).toMatchObject({ failed: [] })
      for (const f of files) await expect(read(f)).resolves.toBe(`original ${f}`)
      const last = (await t.backups.getPatchMetadata(UUID))?.lastRestore as {
        files: Record<string, { key: string }>
      }
      // One blob per replaced file cost four to six new inodes each; 119 small ones share packs.
      const keys = new Set(Object.values(last.files).map((s) => s.key))
      expect(keys.size).toBeLessThanOrEqual(3)
      const undone = await t.backups.undoRestore(UUID)
      expect(undone).toMatchObject({ failed: [], errors: [] })
      expect(undone.undone).toHaveLength(files.length)
      for (const [i, f] of files.entries()) {
        await expect(read(f)).resolves.toBe(patched(i))
        expect((await stat(at(f))).mode & 0o777).toBe(i % 2 ? 0o755 : 0o640)
      }
    })

    it('refuses a packed snapshot a hand-edited manifest points outside its pack or at other bytes', async () => {
      const files = await restoredOnce(['pk/a.js', 'pk/b.js', 'pk/c.js', 'pk/d.js'])
      type Packed = { integrity: string; size: number; pack: { offset: number; size: number } }
      const edit = async (change: (files: Record<string, Packed>) => void) => {
        await t.fixture.manifests.repo.update(UUID, (m) => {
          const next = structuredClone(m!)
          change((next.lastRestore as { files: Record<string, Packed> }).files)
          return next
        })
      }
      const [a, b, c, d] = files as [string, string, string, string]
      await edit((f) => {
        f[a]!.pack.offset = 1e6 // past the pack's end
        f[b]!.pack.size = 64 * 1024 * 1024 // a pack no restore writes, read whole
        f[c]!.integrity = sha256Integrity('other bytes') // the slice is not these bytes
        ;(f[d] as unknown as { pack: null }).pack = null
      })
      const undone = await t.backups.undoRestore(UUID)
      expect(undone.undone).toEqual([])
      expect(Object.fromEntries(undone.errors.map((e) => [e.path, e.code]))).toEqual({
        [a]: 'INVALID_MANIFEST',
        [b]: 'INVALID_MANIFEST',
        [c]: 'INTEGRITY_MISMATCH',
        [d]: 'INVALID_MANIFEST',
      })
      for (const f of files) await expect(read(f)).resolves.toBe(`original ${f}`)
    })

    it('refuses restores and undo while another live process has an atomic restore in flight, and keeps its journal', async () => {
      const files = await restoredOnce(['live/a.js', 'live/b.js'])
      const { lastRestore, ...manifest } = (await t.backups.getPatchMetadata(UUID))!
      const previous = (lastRestore as { files: Record<string, unknown> }).files
      // Another process (alive: this one's parent) is committing a restore whose undo needs these.
      const journal = {
        id: 'mx1.live',
        phase: 'committing',
        startedAt: t.clock.toISOString(),
        owner: { pid: process.ppid, host: os.hostname() },
        files: Object.fromEntries(
          files.map((f, i) => [
            f,
            {
              temp: `${f.slice(0, f.lastIndexOf('/') + 1)}.pb-mx1.live-${i}.tmp`,
              previous: previous[f],
            },
          ]),
        ),
      }
      await t.fixture.manifests.repo.update(UUID, () => ({ ...manifest, restoreJournal: journal }))
      await patchAll(files, 'again')
      // Nothing that writes these files goes ahead: an atomic or plain restore, one file, undo.
      for (const call of [
        () => t.backups.restoreAllBackups(UUID, { atomic: true }),
        () => t.backups.restoreAllBackups(UUID),
        () => t.backups.restoreBackup(UUID, files[0] as string),
        () => t.backups.undoRestore(UUID),
      ]) {
        const error = await caught(call())
        expect(isPatchBackupError(error, 'RESTORE_IN_PROGRESS')).toBe(true)
      }
      expect((await t.backups.getPatchMetadata(UUID))?.restoreJournal).toEqual(journal)
      for (const f of files) await expect(read(f)).resolves.toBe(`again ${f}`)
      // Its snapshots are still there for it: put back as that restore would on a failure.
      await t.fixture.manifests.repo.update(UUID, (m) => ({
        ...m!,
        restoreJournal: {
          ...journal,
          phase: 'rolling-back',
          owner: { pid: 999_999_999, host: os.hostname() },
        },
      }))
      await expect(t.backups.recover(UUID)).resolves.toMatchObject({ outcome: 'rolled-back' })
      for (const f of files) await expect(read(f)).resolves.toBe(`patched ${f}`)
    })

    it('recovers a journal whose pid now names another process (a journal from before this boot)', async (ctx) => {
      // Linux tells a process by its boot (and start: core's process-identity.test.ts); elsewhere
      // only the pid is known.
      const boot = await readFile('/proc/sys/kernel/random/boot_id', 'utf8').catch(() => undefined)
      if (boot === undefined) ctx.skip()
      await t.backups.createBackup(UUID, t.key(LODASH))
      await write(LODASH, 'patched')
      const manifest = (await t.backups.getPatchMetadata(UUID))!
      const stale = (owner: object) => ({
        id: 'mx2.reused',
        phase: 'staging',
        startedAt: t.clock.toISOString(),
        // pid 1 is alive, and is not the restore that wrote this.
        owner: { pid: 1, host: os.hostname(), ...owner },
        files: {},
      })
      // Written (the suite's clock: 2025) before this boot, by another one.
      await t.fixture.manifests.repo.update(UUID, () => ({
        ...manifest,
        restoreJournal: stale({ boot: '00000000-0000-4000-8000-000000000000', ns: '-', start: 1 }),
      }))
      await expect(t.backups.recover(UUID)).resolves.toMatchObject({ outcome: 'rolled-back' })
      // Without boot and start (another system, an older version), a live pid still holds it.
      await t.fixture.manifests.repo.update(UUID, () => ({
        ...manifest,
        restoreJournal: stale({}),
      }))
      await expect(t.backups.recover(UUID)).rejects.toMatchObject({ code: 'RESTORE_IN_PROGRESS' })
      // Unless asked to: its process id now names another program.
      await expect(t.backups.recover(UUID, { force: true })).resolves.toMatchObject({
        outcome: 'rolled-back',
      })
    })

    it('an atomic restore with nothing to replace keeps the last restore undoable', async () => {
      const files = await restoredOnce(['same/a.js', 'same/b.js'])
      const again = await t.backups.restoreAllBackups(UUID, { atomic: true })
      expect(again).toMatchObject({ restored: files, unchanged: files, failed: [] })
      await expect(t.backups.undoRestore(UUID)).resolves.toMatchObject({ undone: files })
      for (const f of files) await expect(read(f)).resolves.toBe(`patched ${f}`)
    })

    it('rolls back from packed snapshots when recovering a restore that failed while committing', async () => {
      const files = await restoredOnce(['rb/a.js', 'rb/b.js', 'rb/c/d.js'])
      const { lastRestore, ...manifest } = (await t.backups.getPatchMetadata(UUID))!
      const previous = (lastRestore as { files: Record<string, { pack?: unknown }> }).files
      expect(Object.values(previous).every((s) => s.pack !== undefined)).toBe(true)
      // A restore that renamed every file, then failed and died before putting them back.
      await t.fixture.manifests.repo.update(UUID, () => ({
        ...manifest,
        restoreJournal: {
          id: 'mx0.dead',
          phase: 'rolling-back',
          startedAt: t.clock.toISOString(),
          owner: { pid: 999_999_999, host: 'elsewhere' },
          files: Object.fromEntries(
            files.map((f, i) => [
              f,
              {
                temp: `${f.slice(0, f.lastIndexOf('/') + 1)}.pb-mx0.dead-${i}.tmp`,
                previous: previous[f],
              },
            ]),
          ),
        },
      }))
      t.clock = new Date(t.clock.getTime() + 11 * 60 * 1000)
      await expect(t.backups.recover(UUID)).resolves.toMatchObject({ outcome: 'rolled-back' })
      for (const f of files) await expect(read(f)).resolves.toBe(`patched ${f}`)
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
