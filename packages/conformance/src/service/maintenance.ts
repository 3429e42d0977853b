import { rm } from 'node:fs/promises'
import {
  type BackupStore,
  backupKey,
  isPatchBackupError,
  patchKeyPrefix,
  sha256Integrity,
} from '@patch-backup/core'
import { describe, expect, it } from 'vitest'
import { readStream } from '../read-stream.js'
import { caught, LODASH, type ServiceTest, signal, UUID } from './context.js'

/** verify, repair and gc, and overwrites that must not lose recorded bytes. */
export function maintenanceTests(t: ServiceTest): void {
  const { at, write, read, open } = t
  /**
   * t.key(LODASH) backed up in UUID and 'other', then an overwrite in UUID that re-points its key at
   * patched bytes and cannot write its manifest: the manifest still records the original bytes,
   * which now only 'other' and the overwrite's pin hold.
   */
  const failedOverwrite = async () => {
    await t.backups.createBackup(UUID, t.key(LODASH))
    await t.backups.createBackup('other', t.key(LODASH))
    await write(LODASH, 'patched')
    const repo = t.fixture.manifests.repo
    const unwritable = open({
      manifests: {
        get: (uuid) => repo.get(uuid),
        list: () => repo.list(),
        delete: (uuid) => repo.delete(uuid),
        update: async () => {
          throw new Error('disk full')
        },
      },
    })
    await expect(
      unwritable.createBackup(UUID, t.key(LODASH), { overwrite: true }),
    ).rejects.toThrow()
  }

  /** Once 'other' is cleaned up and gc has run, UUID's t.key(LODASH) still verifies and restores. */
  const expectOriginalKept = async (files = 1) => {
    await t.backups.cleanupBackups('other')
    await t.backups.gc()
    await expect(t.backups.verify()).resolves.toMatchObject({ files, ok: files, problems: [] })
    await write(LODASH, 'changed')
    await expect(t.backups.restoreBackup(UUID, t.key(LODASH))).resolves.toBe(true)
    await expect(read(LODASH)).resolves.toBe('module.exports = "original"\n')
  }

  describe('verify, repair and gc', () => {
    it('verifies every stored file of every patch', async () => {
      await t.backups.createBackups(UUID, [
        t.key(LODASH),
        t.key('node_modules/lodash/package.json'),
      ])
      await t.backups.createBackup('other', t.key(LODASH))
      await expect(t.backups.verify()).resolves.toEqual({
        patches: 2,
        files: 3,
        ok: 3,
        problems: [],
      })
      await expect(t.backups.verify('other')).resolves.toMatchObject({
        patches: 1,
        files: 1,
        ok: 1,
      })
      await expect(t.backups.verify('unknown')).resolves.toEqual({
        patches: 0,
        files: 0,
        ok: 0,
        problems: [],
      })
    })

    it('names each corrupt or missing file', async (ctx) => {
      if (!t.fixture.store.corrupt || !t.fixture.store.lose) ctx.skip()
      await write('c.js', 'will rot')
      await write('d.js', 'will vanish')
      const { files } = await t.backups.createBackups(UUID, [
        t.key(LODASH),
        t.key('c.js'),
        t.key('d.js'),
      ])
      await t.fixture.store.corrupt!(files[t.key('c.js')]!.integrity)
      await t.fixture.store.lose!(files[t.key('d.js')]!.integrity)
      const report = await t.backups.verify(UUID)
      expect(report).toMatchObject({ patches: 1, files: 3, ok: 1 })
      expect(report.problems.map((p) => [p.path, p.code])).toEqual([
        [t.key('c.js'), 'INTEGRITY_MISMATCH'],
        [t.key('d.js'), 'BLOB_MISSING'],
      ])
    })

    it('repair drops only the broken entries', async (ctx) => {
      if (!t.fixture.store.lose) ctx.skip()
      await write('d.js', 'will vanish')
      const { files } = await t.backups.createBackups(UUID, [t.key(LODASH), t.key('d.js')])
      await t.fixture.store.lose!(files[t.key('d.js')]!.integrity)
      const repaired = await t.backups.repair()
      expect(repaired.dropped.map((p) => p.path)).toEqual([t.key('d.js')])
      await expect(t.backups.listBackups(UUID)).resolves.toEqual([t.key(LODASH)])
      await expect(t.backups.getBackupInfo(UUID, t.key(LODASH))).resolves.toEqual(
        files[t.key(LODASH)],
      )
      await expect(t.backups.verify()).resolves.toMatchObject({ problems: [] })
    })

    it('gc frees what no manifest references and keeps every live backup', async () => {
      const live = await t.backups.createBackup(UUID, t.key(LODASH))
      await write('crashed.js', 'bytes of a backup that never reached its manifest')
      await t.backups.createBackup('crashed', t.key('crashed.js'))
      const orphan = await t.backups.getBackupInfo('crashed', t.key('crashed.js'))
      // Simulate a crash between the store write and the manifest write.
      await t.fixture.manifests.repo.delete('crashed')
      const report = await t.backups.gc()
      if (t.fixture.store.store.keys) expect(report.removedKeys).toBe(1)
      if (t.fixture.store.holdsContent && t.fixture.store.store.keys) {
        await expect(t.fixture.store.holdsContent(orphan!.integrity)).resolves.toBe(false)
        await expect(t.fixture.store.holdsContent(live.integrity)).resolves.toBe(true)
      }
      await write(LODASH, 'patched')
      await t.backups.restoreBackup(UUID, t.key(LODASH))
      await expect(read(LODASH)).resolves.toBe('module.exports = "original"\n')
      await expect(t.backups.gc()).resolves.toMatchObject({ removedKeys: 0, removedBlobs: 0 })
    })

    it('gc waits for a backup of this process that has stored its bytes but not its manifest', async (ctx) => {
      const inner = t.fixture.store.store
      if (!inner.keys) ctx.skip()
      const files = Array.from({ length: 5 }, (_, i) => t.key(`g/f${i}.js`))
      for (const f of files) await write(f, `bytes of ${f}`)
      // Hold the batch's last store write until gc has listed the keys: gc then sees keys
      // whose manifest entries are not written yet.
      let stored = 0
      const gcListed = signal()
      const storedAll = signal()
      const held: BackupStore = {
        ...inner,
        put: async (key, data) => {
          const result = await inner.put(key, data)
          if (++stored === files.length) {
            storedAll.fire()
            await gcListed.done
          }
          return result
        },
        keys: async function* (prefix) {
          yield* inner.keys!(prefix)
          gcListed.fire()
        },
      }
      const slow = open({ store: held, concurrency: 1 })
      const batch = slow.createBackups(UUID, files)
      await storedAll.done
      await slow.gc()
      await expect(batch).resolves.toMatchObject({ failed: [] })
      await expect(slow.verify(UUID)).resolves.toMatchObject({ ok: 5, problems: [] })
    })

    it('keeps the bytes an overwrite left recorded when its manifest write failed, through gc and another patch cleanup', async () => {
      await failedOverwrite()
      // gc keeps the pin (its file is still recorded); 'other' goes with its key.
      await t.backups.gc()
      await expectOriginalKept()
    })

    it('an overwrite frees the bytes it replaced, and only those', async () => {
      const old = await t.backups.createBackup(UUID, t.key(LODASH))
      const shared = await t.backups.createBackup(UUID, t.key('node_modules/lodash/package.json'))
      await t.backups.createBackup('other', t.key('node_modules/lodash/package.json'))
      await write(LODASH, 'patched')
      await write('node_modules/lodash/package.json', '{"name":"patched"}')
      await t.backups.createBackups(
        UUID,
        [t.key(LODASH), t.key('node_modules/lodash/package.json')],
        {
          overwrite: true,
        },
      )
      // A store that collects garbage may leave copies no key holds to it (encryption stores
      // the pinned bytes afresh); one that does not must free them on the spot.
      if (t.fixture.store.store.collectGarbage) await t.backups.gc()
      if (t.fixture.store.holdsContent) {
        await expect(t.fixture.store.holdsContent(old.integrity)).resolves.toBe(false)
        await expect(t.fixture.store.holdsContent(shared.integrity)).resolves.toBe(true)
      }
      await expect(t.backups.verify()).resolves.toMatchObject({ files: 3, ok: 3, problems: [] })
      await write('node_modules/lodash/package.json', 'changed')
      await t.backups.restoreBackup('other', t.key('node_modules/lodash/package.json'))
      await expect(read('node_modules/lodash/package.json')).resolves.toBe('{"name":"lodash"}\n')
    })

    it('gc keeps a pin left after its manifest moved on while the file is recorded, and frees it with the patch', async () => {
      const old = await t.backups.createBackup(UUID, t.key(LODASH))
      await write(LODASH, 'patched')
      const inner = t.fixture.store.store
      // The overwrite lands, but its pin key cannot be released (as if killed just after).
      const stuck = open({
        store: {
          ...inner,
          remove: async (key, opts) => {
            if (key.includes(':pin-')) throw new Error('busy')
            return inner.remove(key, opts)
          },
        },
      })
      const fresh = await stuck.createBackup(UUID, t.key(LODASH), { overwrite: true })
      expect(fresh.integrity).not.toBe(old.integrity)
      await expect(t.backups.gc()).resolves.toMatchObject({ removedKeys: 0 })
      await expect(t.backups.verify()).resolves.toMatchObject({ files: 1, ok: 1, problems: [] })
      await write(LODASH, 'changed again')
      await expect(t.backups.restoreBackup(UUID, t.key(LODASH))).resolves.toBe(true)
      await expect(read(LODASH)).resolves.toBe('patched')
      await t.backups.cleanupBackups(UUID)
      const report = await t.backups.gc()
      if (inner.keys) {
        expect(report.removedKeys).toBe(1)
        if (t.fixture.store.holdsContent)
          await expect(t.fixture.store.holdsContent(old.integrity)).resolves.toBe(false)
      }
    })

    it('a gc of another process during an overwrite neither undoes it nor frees either bytes', async (ctx) => {
      const inner = t.fixture.store.store
      if (!inner.keys) ctx.skip()
      const old = await t.backups.createBackup(UUID, t.key(LODASH))
      await t.backups.createBackup('other', t.key(LODASH))
      await write(LODASH, 'patched')
      const keyMoved = signal()
      const gcDone = signal()
      const held: BackupStore = {
        ...inner,
        put: async (key, data) => {
          const result = await inner.put(key, data)
          if (!key.includes(':pin-') && result.integrity !== old.integrity) {
            keyMoved.fire()
            await gcDone.done
          }
          return result
        },
      }
      // Two services on one store and one repository: two processes, each with its own queues.
      const overwrite = open({ store: held }).createBackup(UUID, t.key(LODASH), { overwrite: true })
      await keyMoved.done
      // The gc starts while the key has moved; it waits for the patch's lock the overwrite holds.
      const gc = open().gc()
      gcDone.fire()
      const [fresh] = await Promise.all([overwrite, gc])
      await t.backups.cleanupBackups('other')
      await t.backups.gc()
      await expect(t.backups.verify()).resolves.toMatchObject({ files: 1, ok: 1, problems: [] })
      await expect(t.backups.getBackupInfo(UUID, t.key(LODASH))).resolves.toEqual(fresh)
      await write(LODASH, 'changed again')
      await expect(t.backups.restoreBackup(UUID, t.key(LODASH))).resolves.toBe(true)
      await expect(read(LODASH)).resolves.toBe('patched')
    })

    it('a batch overwrite keeps the pin of a file whose store write failed after moving its key', async () => {
      const other = t.key('node_modules/lodash/package.json')
      await t.backups.createBackups(UUID, [t.key(LODASH), other])
      await t.backups.createBackup('other', t.key(LODASH))
      await write(LODASH, 'patched')
      await write(other, 'patched too')
      const inner = t.fixture.store.store
      const late: BackupStore = {
        ...inner,
        put: async (key, data) => {
          const result = await inner.put(key, data)
          // The key has moved to the patched bytes, then the store reports a failure.
          if (!key.includes(':pin-') && result.integrity === sha256Integrity('patched'))
            throw new Error('late failure')
          return result
        },
      }
      const batch = await open({ store: late }).createBackups(UUID, [t.key(LODASH), other], {
        overwrite: true,
      })
      expect(batch.failed).toEqual([t.key(LODASH)])
      await expectOriginalKept(2)
    })

    it('an overwrite that cannot pin the recorded bytes fails and moves nothing', async () => {
      const old = await t.backups.createBackup(UUID, t.key(LODASH))
      await t.backups.createBackup('other', t.key(LODASH))
      await write(LODASH, 'patched')
      const inner = t.fixture.store.store
      const flaky: BackupStore = {
        ...inner,
        put: async (key, data) => {
          if (key.includes(':pin-')) {
            if (typeof data === 'object' && 'resume' in data) data.resume()
            throw new Error('503 Slow Down')
          }
          return inner.put(key, data)
        },
      }
      const error = await caught(
        open({ store: flaky }).createBackup(UUID, t.key(LODASH), { overwrite: true }),
      )
      expect(isPatchBackupError(error, 'STORE_ERROR')).toBe(true)
      expect((error as { path?: string }).path).toBe(t.key(LODASH))
      const batch = await open({ store: flaky }).createBackups(UUID, [t.key(LODASH)], {
        overwrite: true,
      })
      expect(batch.failed).toEqual([t.key(LODASH)])
      await expect(t.backups.getBackupInfo(UUID, t.key(LODASH))).resolves.toEqual(old)
      const kept = await inner.openKey?.(backupKey(UUID, t.key(LODASH)))
      if (kept) expect((await readStream(kept)).toString()).toBe('module.exports = "original"\n')
      await expectOriginalKept()
    })

    it('an overwrite refused before its store write leaves no pin behind', async (ctx) => {
      const inner = t.fixture.store.store
      if (!inner.keys) ctx.skip()
      await t.backups.createBackup(UUID, t.key(LODASH))
      await rm(at(LODASH))
      const error = await caught(t.backups.createBackup(UUID, t.key(LODASH), { overwrite: true }))
      expect(isPatchBackupError(error, 'SOURCE_UNREADABLE')).toBe(true)
      const batch = await t.backups.createBackups(UUID, [t.key(LODASH)], { overwrite: true })
      expect(batch.failed).toEqual([t.key(LODASH)])
      const pins: string[] = []
      for await (const key of inner.keys!(patchKeyPrefix(UUID)))
        if (key.includes(':pin-')) pins.push(key)
      expect(pins).toEqual([])
    })

    it('neither repair nor gc acts on a pin it could not look at', async (ctx) => {
      const inner = t.fixture.store.store
      if (!inner.keys) ctx.skip()
      await failedOverwrite()
      const repo = t.fixture.manifests.repo
      // The store cannot list keys for a moment (a 503): repair must not drop the entry.
      const unlisted = open({
        store: {
          ...inner,
          keys: () => {
            throw new Error('503 Slow Down')
          },
        },
      })
      await expect(unlisted.repair()).resolves.toMatchObject({ dropped: [] })
      // gc's last look at a manifest fails for a moment: it must keep that patch's keys.
      let reads = 0
      const flaky = open({
        manifests: {
          ...repo,
          get: async (uuid) => {
            if (uuid === UUID && ++reads > 1) throw new Error('EMFILE')
            return repo.get(uuid)
          },
          list: () => repo.list(),
          update: (uuid, fn) => repo.update(uuid, fn),
          delete: (uuid) => repo.delete(uuid),
        },
      })
      await expect(flaky.gc()).resolves.toMatchObject({ removedKeys: 0 })
      await expectOriginalKept()
    })

    it('verify reports a damaged manifest and goes on with the rest', async (ctx) => {
      if (!t.fixture.manifests.corrupt) ctx.skip()
      await t.backups.createBackup('broken', t.key(LODASH))
      await t.backups.createBackup('fine', t.key(LODASH))
      await t.fixture.manifests.corrupt!('broken')
      const report = await t.backups.verify()
      expect(report.ok).toBe(1)
      expect(report.problems).toEqual([
        expect.objectContaining({ uuid: 'broken', code: 'MANIFEST_CORRUPT' }),
      ])
      // gc must not free the keys of a manifest it cannot read.
      await expect(t.backups.gc()).resolves.toMatchObject({ removedKeys: 0 })
    })
  })
}
