import { randomBytes } from 'node:crypto'
import {
  chmod,
  link,
  mkdir,
  readdir,
  readFile,
  rm,
  stat,
  symlink,
  writeFile,
} from 'node:fs/promises'
import path from 'node:path'
import {
  type BackupStore,
  backupKey,
  createPatchBackups,
  isPatchBackupError,
  type PatchBackups,
  type PatchBackupsOptions,
  patchKeyPrefix,
  sha256Integrity,
} from '@patch-backup/core'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { Factory, ServiceFixture } from './fixtures.js'
import { createProjectDir } from './project-dir.js'
import { readStream } from './read-stream.js'

const UUID = 'abc-123'
const LODASH = 'node_modules/lodash/index.js'
const BAD_UUIDS = ['../x', 'a/b', '', 'x'.repeat(200), 'a\0b', '.', '..', '-leading-dash']

/** A promise and the function that resolves it (Node 20 has no Promise.withResolvers). */
function signal(): { done: Promise<void>; fire: () => void } {
  let fire!: () => void
  const done = new Promise<void>((resolve) => {
    fire = resolve
  })
  return { done, fire }
}

async function caught(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => undefined,
    (error: unknown) => error,
  )
}

/**
 * The seed's behaviour end to end, on whatever store and repository the factory builds,
 * with real files in a temp project dir.
 */
export function runServiceSuite(name: string, factory: Factory<ServiceFixture>): void {
  describe(`PatchBackups service: ${name}`, () => {
    let fixture: ServiceFixture
    let project: { dir: string; dispose: () => Promise<void> }
    let backups: PatchBackups
    let clock: Date
    const at = (file: string) => path.join(project.dir, file)
    const write = async (file: string, content: string | Buffer, mode?: number) => {
      await mkdir(path.dirname(at(file)), { recursive: true })
      await writeFile(at(file), content)
      if (mode !== undefined) await chmod(at(file), mode)
    }
    const read = (file: string) => readFile(at(file), 'utf8')
    const open = (extra: Partial<PatchBackupsOptions> = {}) =>
      createPatchBackups({
        store: fixture.store.store,
        manifests: fixture.manifests.repo,
        cwd: project.dir,
        now: () => clock,
        ...extra,
      })
    /**
     * LODASH backed up in UUID and 'other', then an overwrite in UUID that re-points its key at
     * patched bytes and cannot write its manifest: the manifest still records the original bytes,
     * which now only 'other' and the overwrite's pin hold.
     */
    const failedOverwrite = async () => {
      await backups.createBackup(UUID, LODASH)
      await backups.createBackup('other', LODASH)
      await write(LODASH, 'patched')
      const repo = fixture.manifests.repo
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
      await expect(unwritable.createBackup(UUID, LODASH, { overwrite: true })).rejects.toThrow()
    }

    /** Once 'other' is cleaned up and gc has run, UUID's LODASH still verifies and restores. */
    const expectOriginalKept = async (files = 1) => {
      await backups.cleanupBackups('other')
      await backups.gc()
      await expect(backups.verify()).resolves.toMatchObject({ files, ok: files, problems: [] })
      await write(LODASH, 'changed')
      await expect(backups.restoreBackup(UUID, LODASH)).resolves.toBe(true)
      await expect(read(LODASH)).resolves.toBe('module.exports = "original"\n')
    }

    beforeEach(async () => {
      fixture = await factory()
      project = await createProjectDir()
      clock = new Date('2025-01-14T12:00:00.000Z')
      backups = open()
      await write(LODASH, 'module.exports = "original"\n')
      await write('node_modules/lodash/package.json', '{"name":"lodash"}\n')
    })
    afterEach(async () => {
      await fixture.store.cleanup?.()
      await fixture.manifests.cleanup?.()
      await project.dispose()
    })

    describe('createBackup', () => {
      it('records the file in the seed format and returns its BackupInfo', async () => {
        const info = await backups.createBackup(UUID, LODASH)
        expect(info).toMatchObject({
          integrity: sha256Integrity('module.exports = "original"\n'),
          size: 28,
          backedUpAt: '2025-01-14T12:00:00.000Z',
          originalPath: LODASH,
        })
        const manifest = await backups.getPatchMetadata(UUID)
        expect(manifest).toMatchObject({ uuid: UUID, patchedAt: '2025-01-14T12:00:00.000Z' })
        expect(manifest?.files[LODASH]).toEqual(info)
      })

      it('throws SOURCE_UNREADABLE with the cause for a missing file, and writes nothing', async () => {
        const error = await caught(backups.createBackup(UUID, 'node_modules/nope.js'))
        expect(isPatchBackupError(error, 'SOURCE_UNREADABLE')).toBe(true)
        expect((error as Error).cause).toMatchObject({ code: 'ENOENT' })
        await expect(backups.listAllPatches()).resolves.toEqual([])
      })

      it('throws SOURCE_UNREADABLE for a directory', async () => {
        const error = await caught(backups.createBackup(UUID, 'node_modules/lodash/../lodash/x/..'))
        expect(isPatchBackupError(error, 'SOURCE_UNREADABLE')).toBe(true)
      })

      it('keeps the first (pre-patch) bytes on a second backup', async () => {
        const first = await backups.createBackup(UUID, LODASH)
        await write(LODASH, 'patched\n')
        clock = new Date('2025-02-01T00:00:00.000Z')
        await expect(backups.createBackup(UUID, LODASH)).resolves.toEqual(first)
        await backups.restoreBackup(UUID, LODASH)
        await expect(read(LODASH)).resolves.toBe('module.exports = "original"\n')
      })

      it('replaces the backup with { overwrite: true }', async () => {
        await backups.createBackup(UUID, LODASH)
        await write(LODASH, 'second\n')
        const second = await backups.createBackup(UUID, LODASH, { overwrite: true })
        expect(second.integrity).toBe(sha256Integrity('second\n'))
        await write(LODASH, 'third\n')
        await backups.restoreBackup(UUID, LODASH)
        await expect(read(LODASH)).resolves.toBe('second\n')
      })

      it('normalizes the path it records', async () => {
        await write('b.js', 'b')
        await backups.createBackup(UUID, './a/../b.js')
        await backups.createBackup(UUID, 'node_modules\\lodash\\package.json')
        await expect(backups.listBackups(UUID)).resolves.toEqual([
          'b.js',
          'node_modules/lodash/package.json',
        ])
        await expect(backups.hasBackup(UUID, 'b.js')).resolves.toBe(true)
      })

      it('accepts an absolute path inside the project', async () => {
        await backups.createBackup(UUID, at(LODASH))
        await expect(backups.hasBackup(UUID, at(LODASH))).resolves.toBe(true)
      })

      it('records all 100 files of 100 concurrent calls', async () => {
        const files = Array.from({ length: 100 }, (_, i) => `node_modules/pkg/f${i}.js`)
        await Promise.all(files.map((f, i) => write(f, `file ${i}`)))
        await Promise.all(files.map((f) => backups.createBackup(UUID, f)))
        await expect(backups.listBackups(UUID)).resolves.toEqual([...files].sort())
      })

      it('backs up an empty file', async () => {
        await write('empty.txt', '')
        await expect(backups.createBackup(UUID, 'empty.txt')).resolves.toMatchObject({ size: 0 })
        await write('empty.txt', 'not empty')
        await backups.restoreBackup(UUID, 'empty.txt')
        await expect(read('empty.txt')).resolves.toBe('')
      })
    })

    describe('bad input', () => {
      for (const uuid of BAD_UUIDS) {
        it(`refuses uuid ${JSON.stringify(uuid.slice(0, 24))} with INVALID_UUID before touching anything`, async () => {
          for (const call of [
            () => backups.createBackup(uuid, LODASH),
            () => backups.restoreBackup(uuid, LODASH),
            () => backups.listBackups(uuid),
            () => backups.cleanupBackups(uuid),
            () => backups.restoreAllBackups(uuid),
          ]) {
            expect(isPatchBackupError(await caught(call()), 'INVALID_UUID')).toBe(true)
          }
          await expect(backups.listAllPatches()).resolves.toEqual([])
        })
      }

      it('refuses a path with NUL with INVALID_PATH', async () => {
        expect(
          isPatchBackupError(await caught(backups.createBackup(UUID, 'a\0b.js')), 'INVALID_PATH'),
        ).toBe(true)
      })

      it('refuses paths outside the project with INVALID_PATH', async () => {
        for (const bad of ['../outside.js', '/etc/passwd', 'node_modules/../../x.js', '.']) {
          expect(
            isPatchBackupError(await caught(backups.createBackup(UUID, bad)), 'INVALID_PATH'),
            bad,
          ).toBe(true)
        }
        await expect(backups.listAllPatches()).resolves.toEqual([])
      })
    })

    describe('createBackups', () => {
      it('backs up a batch in one call and reports each failure', async () => {
        const result = await backups.createBackups(UUID, [
          LODASH,
          'missing.js',
          'node_modules/lodash/package.json',
        ])
        expect(result.backedUp).toEqual([LODASH, 'node_modules/lodash/package.json'])
        expect(result.failed).toEqual(['missing.js'])
        expect(result.errors[0]).toMatchObject({ path: 'missing.js', code: 'SOURCE_UNREADABLE' })
        await expect(backups.listBackups(UUID)).resolves.toEqual([
          LODASH,
          'node_modules/lodash/package.json',
        ])
      })

      it('keeps entries that were already backed up', async () => {
        const first = await backups.createBackup(UUID, LODASH)
        await write(LODASH, 'patched')
        const result = await backups.createBackups(UUID, [LODASH])
        expect(result.files[LODASH]).toEqual(first)
      })
    })

    describe('restoreBackup', () => {
      it('puts the original bytes back and returns true', async () => {
        await backups.createBackup(UUID, LODASH)
        await write(LODASH, 'patched!')
        await expect(backups.restoreBackup(UUID, LODASH)).resolves.toBe(true)
        await expect(read(LODASH)).resolves.toBe('module.exports = "original"\n')
      })

      it('returns false for an unknown patch or file', async () => {
        await expect(backups.restoreBackup('no-such-patch', LODASH)).resolves.toBe(false)
        await backups.createBackup(UUID, LODASH)
        await expect(backups.restoreBackup(UUID, 'other.js')).resolves.toBe(false)
      })

      it('throws INTEGRITY_MISMATCH on rotten bytes and leaves the target untouched', async (ctx) => {
        if (!fixture.store.corrupt) ctx.skip()
        const info = await backups.createBackup(UUID, LODASH)
        await write(LODASH, 'patched content')
        await fixture.store.corrupt!(info.integrity)
        expect(
          isPatchBackupError(
            await caught(backups.restoreBackup(UUID, LODASH)),
            'INTEGRITY_MISMATCH',
          ),
        ).toBe(true)
        await expect(read(LODASH)).resolves.toBe('patched content')
        expect((await readdir(path.dirname(at(LODASH)))).sort()).toEqual([
          'index.js',
          'package.json',
        ])
      })

      it('throws BLOB_MISSING when the stored bytes are gone', async (ctx) => {
        if (!fixture.store.lose) ctx.skip()
        const info = await backups.createBackup(UUID, LODASH)
        await write(LODASH, 'patched')
        await fixture.store.lose!(info.integrity)
        expect(
          isPatchBackupError(await caught(backups.restoreBackup(UUID, LODASH)), 'BLOB_MISSING'),
        ).toBe(true)
        await expect(read(LODASH)).resolves.toBe('patched')
      })

      it('recreates missing parent directories', async () => {
        await backups.createBackup(UUID, LODASH)
        await rm(at('node_modules'), { recursive: true })
        await backups.restoreBackup(UUID, LODASH)
        await expect(read(LODASH)).resolves.toBe('module.exports = "original"\n')
      })

      it('keeps the mode of the backed-up file', async () => {
        await write('bin/tool.sh', '#!/bin/sh\necho hi\n', 0o755)
        await backups.createBackup(UUID, 'bin/tool.sh')
        await write('bin/tool.sh', 'patched', 0o600)
        await backups.restoreBackup(UUID, 'bin/tool.sh')
        expect((await stat(at('bin/tool.sh'))).mode & 0o777).toBe(0o755)
      })

      it('replaces a hardlinked target instead of writing through it', async () => {
        await backups.createBackup(UUID, LODASH)
        await write(LODASH, 'patched shared')
        await link(at(LODASH), at('elsewhere.js'))
        await backups.restoreBackup(UUID, LODASH)
        await expect(read(LODASH)).resolves.toBe('module.exports = "original"\n')
        await expect(read('elsewhere.js')).resolves.toBe('patched shared')
      })

      it('replaces a symlink at the target instead of following it', async () => {
        await backups.createBackup(UUID, LODASH)
        await write('victim.js', 'do not touch')
        await rm(at(LODASH))
        await symlink(at('victim.js'), at(LODASH))
        await backups.restoreBackup(UUID, LODASH)
        await expect(read('victim.js')).resolves.toBe('do not touch')
        await expect(read(LODASH)).resolves.toBe('module.exports = "original"\n')
      })

      it('leaves no temp file beside the target', async () => {
        await backups.createBackup(UUID, LODASH)
        await backups.restoreBackup(UUID, LODASH)
        expect((await readdir(path.dirname(at(LODASH)))).sort()).toEqual([
          'index.js',
          'package.json',
        ])
      })

      it('restores a 3 MiB binary file byte for byte', async () => {
        const bytes = randomBytes(3 * 1024 * 1024)
        await write('big.bin', bytes)
        await backups.createBackup(UUID, 'big.bin')
        await write('big.bin', 'patched')
        await backups.restoreBackup(UUID, 'big.bin')
        expect((await readFile(at('big.bin'))).equals(bytes)).toBe(true)
      })
    })

    describe('restoreAllBackups', () => {
      it('restores every file of the patch, sorted', async () => {
        await backups.createBackups(UUID, [LODASH, 'node_modules/lodash/package.json'])
        await write(LODASH, 'x')
        await write('node_modules/lodash/package.json', 'y')
        await expect(backups.restoreAllBackups(UUID)).resolves.toEqual({
          restored: [LODASH, 'node_modules/lodash/package.json'],
          failed: [],
          errors: [],
        })
        await expect(read('node_modules/lodash/package.json')).resolves.toBe('{"name":"lodash"}\n')
      })

      it('returns empty lists for an unknown patch', async () => {
        await expect(backups.restoreAllBackups('nothing-here')).resolves.toEqual({
          restored: [],
          failed: [],
          errors: [],
        })
      })

      it('restores the rest and explains each failure', async (ctx) => {
        if (!fixture.store.corrupt) ctx.skip()
        const { files } = await backups.createBackups(UUID, [
          LODASH,
          'node_modules/lodash/package.json',
        ])
        await write(LODASH, 'patched')
        await write('node_modules/lodash/package.json', 'patched')
        await fixture.store.corrupt!(files[LODASH]!.integrity)
        const result = await backups.restoreAllBackups(UUID)
        expect(result.restored).toEqual(['node_modules/lodash/package.json'])
        expect(result.failed).toEqual([LODASH])
        expect(result.errors[0]).toMatchObject({ path: LODASH, code: 'INTEGRITY_MISMATCH' })
        await expect(read(LODASH)).resolves.toBe('patched')
      })
    })

    describe('lookups', () => {
      it('lists a patch’s files sorted, or undefined', async () => {
        await backups.createBackups(UUID, ['node_modules/lodash/package.json', LODASH])
        await expect(backups.listBackups(UUID)).resolves.toEqual([
          LODASH,
          'node_modules/lodash/package.json',
        ])
        await expect(backups.listBackups('unknown')).resolves.toBeUndefined()
      })

      it('gives BackupInfo for a known file, undefined otherwise', async () => {
        const info = await backups.createBackup(UUID, LODASH)
        await expect(backups.getBackupInfo(UUID, LODASH)).resolves.toEqual(info)
        await expect(backups.getBackupInfo(UUID, 'other.js')).resolves.toBeUndefined()
        await expect(backups.getBackupInfo('unknown', LODASH)).resolves.toBeUndefined()
      })

      it('gives the manifest, or undefined', async () => {
        await backups.createBackup(UUID, LODASH)
        const manifest = await backups.getPatchMetadata(UUID)
        expect(Object.keys(manifest!.files)).toEqual([LODASH])
        await expect(backups.getPatchMetadata('unknown')).resolves.toBeUndefined()
      })

      it('says whether a file has a backup', async () => {
        await backups.createBackup(UUID, LODASH)
        await expect(backups.hasBackup(UUID, LODASH)).resolves.toBe(true)
        await expect(backups.hasBackup(UUID, 'other.js')).resolves.toBe(false)
        await expect(backups.hasBackup('unknown', LODASH)).resolves.toBe(false)
      })

      it('lists every patch, sorted, or []', async () => {
        await expect(backups.listAllPatches()).resolves.toEqual([])
        await backups.createBackup('zeta', LODASH)
        await backups.createBackup('alpha', LODASH)
        await expect(backups.listAllPatches()).resolves.toEqual(['alpha', 'zeta'])
      })
    })

    describe('cleanupBackups', () => {
      it('removes the patch and frees its bytes', async () => {
        const info = await backups.createBackup(UUID, LODASH)
        await expect(backups.cleanupBackups(UUID)).resolves.toBe(true)
        await expect(backups.listAllPatches()).resolves.toEqual([])
        await expect(backups.restoreBackup(UUID, LODASH)).resolves.toBe(false)
        if (fixture.store.holdsContent)
          await expect(fixture.store.holdsContent(info.integrity)).resolves.toBe(false)
      })

      it('returns false for an unknown patch', async () => {
        await expect(backups.cleanupBackups('unknown')).resolves.toBe(false)
      })

      it('never frees bytes another patch still needs', async () => {
        const info = await backups.createBackup('first', LODASH)
        await backups.createBackup('second', LODASH)
        await backups.cleanupBackups('first')
        if (fixture.store.holdsContent)
          await expect(fixture.store.holdsContent(info.integrity)).resolves.toBe(true)
        await write(LODASH, 'patched')
        await expect(backups.restoreBackup('second', LODASH)).resolves.toBe(true)
        await expect(read(LODASH)).resolves.toBe('module.exports = "original"\n')
      })

      it('lets the same uuid be backed up again afterwards', async () => {
        await backups.createBackup(UUID, LODASH)
        await backups.cleanupBackups(UUID)
        await write(LODASH, 'new original')
        await backups.createBackup(UUID, LODASH)
        await write(LODASH, 'patched')
        await backups.restoreBackup(UUID, LODASH)
        await expect(read(LODASH)).resolves.toBe('new original')
      })
    })

    describe('verify, repair and gc', () => {
      it('verifies every stored file of every patch', async () => {
        await backups.createBackups(UUID, [LODASH, 'node_modules/lodash/package.json'])
        await backups.createBackup('other', LODASH)
        await expect(backups.verify()).resolves.toEqual({
          patches: 2,
          files: 3,
          ok: 3,
          problems: [],
        })
        await expect(backups.verify('other')).resolves.toMatchObject({
          patches: 1,
          files: 1,
          ok: 1,
        })
        await expect(backups.verify('unknown')).resolves.toEqual({
          patches: 0,
          files: 0,
          ok: 0,
          problems: [],
        })
      })

      it('names each corrupt or missing file', async (ctx) => {
        if (!fixture.store.corrupt || !fixture.store.lose) ctx.skip()
        await write('c.js', 'will rot')
        await write('d.js', 'will vanish')
        const { files } = await backups.createBackups(UUID, [LODASH, 'c.js', 'd.js'])
        await fixture.store.corrupt!(files['c.js']!.integrity)
        await fixture.store.lose!(files['d.js']!.integrity)
        const report = await backups.verify(UUID)
        expect(report).toMatchObject({ patches: 1, files: 3, ok: 1 })
        expect(report.problems.map((p) => [p.path, p.code])).toEqual([
          ['c.js', 'INTEGRITY_MISMATCH'],
          ['d.js', 'BLOB_MISSING'],
        ])
      })

      it('repair drops only the broken entries', async (ctx) => {
        if (!fixture.store.lose) ctx.skip()
        await write('d.js', 'will vanish')
        const { files } = await backups.createBackups(UUID, [LODASH, 'd.js'])
        await fixture.store.lose!(files['d.js']!.integrity)
        const repaired = await backups.repair()
        expect(repaired.dropped.map((p) => p.path)).toEqual(['d.js'])
        await expect(backups.listBackups(UUID)).resolves.toEqual([LODASH])
        await expect(backups.getBackupInfo(UUID, LODASH)).resolves.toEqual(files[LODASH])
        await expect(backups.verify()).resolves.toMatchObject({ problems: [] })
      })

      it('gc frees what no manifest references and keeps every live backup', async () => {
        const live = await backups.createBackup(UUID, LODASH)
        await write('crashed.js', 'bytes of a backup that never reached its manifest')
        await backups.createBackup('crashed', 'crashed.js')
        const orphan = await backups.getBackupInfo('crashed', 'crashed.js')
        // Simulate a crash between the store write and the manifest write.
        await fixture.manifests.repo.delete('crashed')
        const report = await backups.gc()
        if (fixture.store.store.keys) expect(report.removedKeys).toBe(1)
        if (fixture.store.holdsContent && fixture.store.store.keys) {
          await expect(fixture.store.holdsContent(orphan!.integrity)).resolves.toBe(false)
          await expect(fixture.store.holdsContent(live.integrity)).resolves.toBe(true)
        }
        await write(LODASH, 'patched')
        await backups.restoreBackup(UUID, LODASH)
        await expect(read(LODASH)).resolves.toBe('module.exports = "original"\n')
        await expect(backups.gc()).resolves.toMatchObject({ removedKeys: 0, removedBlobs: 0 })
      })

      it('gc waits for a backup of this process that has stored its bytes but not its manifest', async (ctx) => {
        const inner = fixture.store.store
        if (!inner.keys) ctx.skip()
        const files = Array.from({ length: 5 }, (_, i) => `g/f${i}.js`)
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
        await backups.gc()
        await expectOriginalKept()
      })

      it('an overwrite frees the bytes it replaced, and only those', async () => {
        const old = await backups.createBackup(UUID, LODASH)
        const shared = await backups.createBackup(UUID, 'node_modules/lodash/package.json')
        await backups.createBackup('other', 'node_modules/lodash/package.json')
        await write(LODASH, 'patched')
        await write('node_modules/lodash/package.json', '{"name":"patched"}')
        await backups.createBackups(UUID, [LODASH, 'node_modules/lodash/package.json'], {
          overwrite: true,
        })
        // A store that collects garbage may leave copies no key holds to it (encryption stores
        // the pinned bytes afresh); one that does not must free them on the spot.
        if (fixture.store.store.collectGarbage) await backups.gc()
        if (fixture.store.holdsContent) {
          await expect(fixture.store.holdsContent(old.integrity)).resolves.toBe(false)
          await expect(fixture.store.holdsContent(shared.integrity)).resolves.toBe(true)
        }
        await expect(backups.verify()).resolves.toMatchObject({ files: 3, ok: 3, problems: [] })
        await write('node_modules/lodash/package.json', 'changed')
        await backups.restoreBackup('other', 'node_modules/lodash/package.json')
        await expect(read('node_modules/lodash/package.json')).resolves.toBe('{"name":"lodash"}\n')
      })

      it('gc keeps a pin left after its manifest moved on while the file is recorded, and frees it with the patch', async () => {
        const old = await backups.createBackup(UUID, LODASH)
        await write(LODASH, 'patched')
        const inner = fixture.store.store
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
        const fresh = await stuck.createBackup(UUID, LODASH, { overwrite: true })
        expect(fresh.integrity).not.toBe(old.integrity)
        await expect(backups.gc()).resolves.toMatchObject({ removedKeys: 0 })
        await expect(backups.verify()).resolves.toMatchObject({ files: 1, ok: 1, problems: [] })
        await write(LODASH, 'changed again')
        await expect(backups.restoreBackup(UUID, LODASH)).resolves.toBe(true)
        await expect(read(LODASH)).resolves.toBe('patched')
        await backups.cleanupBackups(UUID)
        const report = await backups.gc()
        if (inner.keys) {
          expect(report.removedKeys).toBe(1)
          if (fixture.store.holdsContent)
            await expect(fixture.store.holdsContent(old.integrity)).resolves.toBe(false)
        }
      })

      it('a gc of another process during an overwrite neither undoes it nor frees either bytes', async (ctx) => {
        const inner = fixture.store.store
        if (!inner.keys) ctx.skip()
        const old = await backups.createBackup(UUID, LODASH)
        await backups.createBackup('other', LODASH)
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
        const overwrite = open({ store: held }).createBackup(UUID, LODASH, { overwrite: true })
        await keyMoved.done
        await open().gc()
        gcDone.fire()
        const fresh = await overwrite
        await backups.cleanupBackups('other')
        await backups.gc()
        await expect(backups.verify()).resolves.toMatchObject({ files: 1, ok: 1, problems: [] })
        await expect(backups.getBackupInfo(UUID, LODASH)).resolves.toEqual(fresh)
        await write(LODASH, 'changed again')
        await expect(backups.restoreBackup(UUID, LODASH)).resolves.toBe(true)
        await expect(read(LODASH)).resolves.toBe('patched')
      })

      it('a batch overwrite keeps the pin of a file whose store write failed after moving its key', async () => {
        const other = 'node_modules/lodash/package.json'
        await backups.createBackups(UUID, [LODASH, other])
        await backups.createBackup('other', LODASH)
        await write(LODASH, 'patched')
        await write(other, 'patched too')
        const inner = fixture.store.store
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
        const batch = await open({ store: late }).createBackups(UUID, [LODASH, other], {
          overwrite: true,
        })
        expect(batch.failed).toEqual([LODASH])
        await expectOriginalKept(2)
      })

      it('an overwrite that cannot pin the recorded bytes fails and moves nothing', async () => {
        const old = await backups.createBackup(UUID, LODASH)
        await backups.createBackup('other', LODASH)
        await write(LODASH, 'patched')
        const inner = fixture.store.store
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
          open({ store: flaky }).createBackup(UUID, LODASH, { overwrite: true }),
        )
        expect(isPatchBackupError(error, 'STORE_ERROR')).toBe(true)
        expect((error as { path?: string }).path).toBe(LODASH)
        const batch = await open({ store: flaky }).createBackups(UUID, [LODASH], {
          overwrite: true,
        })
        expect(batch.failed).toEqual([LODASH])
        await expect(backups.getBackupInfo(UUID, LODASH)).resolves.toEqual(old)
        const kept = await inner.openKey?.(backupKey(UUID, LODASH))
        if (kept) expect((await readStream(kept)).toString()).toBe('module.exports = "original"\n')
        await expectOriginalKept()
      })

      it('an overwrite refused before its store write leaves no pin behind', async (ctx) => {
        const inner = fixture.store.store
        if (!inner.keys) ctx.skip()
        await backups.createBackup(UUID, LODASH)
        await rm(at(LODASH))
        const error = await caught(backups.createBackup(UUID, LODASH, { overwrite: true }))
        expect(isPatchBackupError(error, 'SOURCE_UNREADABLE')).toBe(true)
        const batch = await backups.createBackups(UUID, [LODASH], { overwrite: true })
        expect(batch.failed).toEqual([LODASH])
        const pins: string[] = []
        for await (const key of inner.keys!(patchKeyPrefix(UUID)))
          if (key.includes(':pin-')) pins.push(key)
        expect(pins).toEqual([])
      })

      it('neither repair nor gc acts on a pin it could not look at', async (ctx) => {
        const inner = fixture.store.store
        if (!inner.keys) ctx.skip()
        await failedOverwrite()
        const repo = fixture.manifests.repo
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
        if (!fixture.manifests.corrupt) ctx.skip()
        await backups.createBackup('broken', LODASH)
        await backups.createBackup('fine', LODASH)
        await fixture.manifests.corrupt!('broken')
        const report = await backups.verify()
        expect(report.ok).toBe(1)
        expect(report.problems).toEqual([
          expect.objectContaining({ uuid: 'broken', code: 'MANIFEST_CORRUPT' }),
        ])
        // gc must not free the keys of a manifest it cannot read.
        await expect(backups.gc()).resolves.toMatchObject({ removedKeys: 0 })
      })
    })

    describe('drift-aware, atomic and undoable restores', () => {
      const patchAll = async (files: string[], tag = 'patched') => {
        for (const f of files) await write(f, `${tag} ${f}`)
      }

      it('tells each file as original, patched, drifted, modified or missing', async () => {
        const files = [
          's/original.js',
          's/patched.js',
          's/drifted.js',
          's/missing.js',
          's/unrecorded.js',
        ]
        for (const f of files) await write(f, `original ${f}`)
        await backups.createBackups(UUID, files)
        await patchAll(files.slice(1, 4))
        await expect(backups.recordPatched(UUID, files.slice(0, 4))).resolves.toMatchObject({
          recorded: files.slice(0, 4),
        })
        await write('s/drifted.js', 'reinstalled by someone else')
        await rm(at('s/missing.js'))
        await write('s/unrecorded.js', 'changed without a record')
        const status = await backups.status(UUID)
        expect(status?.map((s) => [s.path, s.state])).toEqual([
          ['s/drifted.js', 'drifted'],
          ['s/missing.js', 'missing'],
          ['s/original.js', 'original'],
          ['s/patched.js', 'patched'],
          ['s/unrecorded.js', 'modified'],
        ])
        await expect(backups.status('unknown')).resolves.toBeUndefined()
        await expect(backups.recordPatched('unknown')).resolves.toBeUndefined()
      })

      it('refuses a drifted file with DRIFTED, and with force keeps the drifted bytes to undo to', async () => {
        const info = await backups.createBackup(UUID, LODASH)
        await write(LODASH, 'patched')
        await backups.recordPatched(UUID)
        await write(LODASH, 'reinstalled')
        const error = await caught(backups.restoreBackup(UUID, LODASH))
        expect(isPatchBackupError(error, 'DRIFTED')).toBe(true)
        expect((error as Error).message).toContain(LODASH)
        expect((error as Error).message).toContain(sha256Integrity('reinstalled'))
        expect((error as Error).message).toContain(sha256Integrity('patched'))
        await expect(read(LODASH)).resolves.toBe('reinstalled')
        await expect(backups.restoreBackup(UUID, LODASH, { force: true })).resolves.toBe(true)
        await expect(read(LODASH)).resolves.toBe('module.exports = "original"\n')
        await expect(backups.undoRestore(UUID)).resolves.toEqual({
          undone: [LODASH],
          failed: [],
          errors: [],
        })
        await expect(read(LODASH)).resolves.toBe('reinstalled')
        expect(info.integrity).toBe(sha256Integrity('module.exports = "original"\n'))
      })

      it('undoes every file a forced file-by-file restore replaced', async () => {
        const files = [LODASH, 'node_modules/lodash/package.json']
        await backups.createBackups(UUID, files)
        await patchAll(files)
        await backups.recordPatched(UUID)
        await patchAll(files, 'drifted')
        const result = await backups.restoreAllBackups(UUID, { force: true })
        expect(result.restored).toEqual(files)
        await expect(backups.undoRestore(UUID)).resolves.toMatchObject({ undone: files })
        for (const f of files) await expect(read(f)).resolves.toBe(`drifted ${f}`)
      })

      it('leaves a file that is already original alone and counts it as restored', async () => {
        await backups.createBackup(UUID, LODASH)
        await write(LODASH, 'patched')
        await backups.recordPatched(UUID)
        await write(LODASH, 'module.exports = "original"\n')
        const before = await stat(at(LODASH))
        await expect(backups.restoreBackup(UUID, LODASH)).resolves.toBe(true)
        expect((await stat(at(LODASH))).ino).toBe(before.ino)
      })

      it('restores all or nothing: one corrupt blob among 50 leaves all 50 as they were', async (ctx) => {
        if (!fixture.store.corrupt) ctx.skip()
        const files = Array.from({ length: 50 }, (_, i) => `many/f${String(i).padStart(2, '0')}.js`)
        for (const f of files) await write(f, `original ${f}`)
        const { files: infos } = await backups.createBackups(UUID, files)
        await patchAll(files)
        await fixture.store.corrupt!(infos['many/f37.js']!.integrity)
        const result = await backups.restoreAllBackups(UUID, { atomic: true })
        expect(result.restored).toEqual([])
        expect(result.failed).toEqual(['many/f37.js'])
        expect(result.errors[0]).toMatchObject({ code: 'INTEGRITY_MISMATCH' })
        for (const f of files) await expect(read(f)).resolves.toBe(`patched ${f}`)
        expect((await readdir(at('many'))).length).toBe(50)
        await expect(backups.recover(UUID)).resolves.toBeUndefined()
      })

      it('restores every file atomically, and undo returns every byte', async () => {
        const files = ['a/one.js', 'a/two.js', 'b/three.js']
        for (const f of files) await write(f, `original ${f}`)
        await backups.createBackups(UUID, files)
        await patchAll(files)
        await rm(at('b/three.js'))
        const result = await backups.restoreAllBackups(UUID, { atomic: true })
        expect(result).toMatchObject({ restored: files.slice().sort(), failed: [] })
        for (const f of files) await expect(read(f)).resolves.toBe(`original ${f}`)
        expect((await readdir(at('a'))).sort()).toEqual(['one.js', 'two.js'])
        const undone = await backups.undoRestore(UUID)
        expect(undone.undone).toEqual(files.slice().sort())
        await expect(read('a/one.js')).resolves.toBe('patched a/one.js')
        await expect(read('a/two.js')).resolves.toBe('patched a/two.js')
        await expect(stat(at('b/three.js'))).rejects.toMatchObject({ code: 'ENOENT' })
        await expect(backups.undoRestore(UUID)).resolves.toEqual({
          undone: [],
          failed: [],
          errors: [],
        })
      })

      it('refuses an atomic restore with a drifted file and changes nothing', async () => {
        await backups.createBackups(UUID, [LODASH, 'node_modules/lodash/package.json'])
        await patchAll([LODASH, 'node_modules/lodash/package.json'])
        await backups.recordPatched(UUID)
        await write(LODASH, 'drifted')
        const result = await backups.restoreAllBackups(UUID, { atomic: true })
        expect(result.failed).toEqual([LODASH])
        expect(result.errors[0]).toMatchObject({ code: 'DRIFTED' })
        await expect(read('node_modules/lodash/package.json')).resolves.toBe(
          'patched node_modules/lodash/package.json',
        )
        const forced = await backups.restoreAllBackups(UUID, { atomic: true, force: true })
        expect(forced.restored).toEqual([LODASH, 'node_modules/lodash/package.json'])
        await backups.undoRestore(UUID)
        await expect(read(LODASH)).resolves.toBe('drifted')
      })

      it('a later restore that fails keeps the last restore undoable', async (ctx) => {
        if (!fixture.store.corrupt) ctx.skip()
        const files = ['u/a.js', 'u/b.js']
        for (const f of files) await write(f, `original ${f}`)
        const { files: infos } = await backups.createBackups(UUID, files)
        await patchAll(files, 'first')
        await backups.restoreAllBackups(UUID, { atomic: true })
        await patchAll(files, 'second')
        await fixture.store.corrupt!(infos['u/b.js']!.integrity)
        const failed = await backups.restoreAllBackups(UUID, { atomic: true })
        expect(failed.failed).toEqual(['u/b.js'])
        await backups.gc()
        await expect(backups.undoRestore(UUID)).resolves.toMatchObject({
          undone: files,
          failed: [],
        })
        for (const f of files) await expect(read(f)).resolves.toBe(`first ${f}`)
      })

      it('finishes a restore a crash left in its journal before recording, without hanging', async () => {
        await backups.createBackup(UUID, LODASH)
        await write(LODASH, 'patched')
        const manifest = await backups.getPatchMetadata(UUID)
        await fixture.manifests.repo.update(UUID, () => ({
          ...manifest!,
          restoreJournal: {
            id: 'dead',
            phase: 'staging',
            startedAt: clock.toISOString(),
            files: {},
          },
        }))
        await expect(backups.recordPatched(UUID)).resolves.toMatchObject({ recorded: [LODASH] })
        await expect(backups.getPatchMetadata(UUID)).resolves.not.toHaveProperty('restoreJournal')
      })

      it('cleanup frees the snapshot bytes too', async (ctx) => {
        if (!fixture.store.holdsContent) ctx.skip()
        await backups.createBackup(UUID, LODASH)
        await write(LODASH, 'bytes only a snapshot holds')
        await backups.restoreAllBackups(UUID, { atomic: true })
        await expect(
          fixture.store.holdsContent!(sha256Integrity('bytes only a snapshot holds')),
        ).resolves.toBe(true)
        await backups.cleanupBackups(UUID)
        await expect(
          fixture.store.holdsContent!(sha256Integrity('bytes only a snapshot holds')),
        ).resolves.toBe(false)
      })
    })

    describe('damaged manifests', () => {
      it('throws MANIFEST_CORRUPT for that patch and keeps the others working', async (ctx) => {
        if (!fixture.manifests.corrupt) ctx.skip()
        await backups.createBackup('broken', LODASH)
        await backups.createBackup('fine', LODASH)
        await fixture.manifests.corrupt!('broken')
        expect(
          isPatchBackupError(await caught(backups.listBackups('broken')), 'MANIFEST_CORRUPT'),
        ).toBe(true)
        expect(
          isPatchBackupError(
            await caught(backups.createBackup('broken', 'node_modules/lodash/package.json')),
            'MANIFEST_CORRUPT',
          ),
        ).toBe(true)
        await expect(backups.listBackups('fine')).resolves.toEqual([LODASH])
        await expect(backups.listAllPatches()).resolves.toContain('fine')
      })
    })
  })
}
