import {
  appendFile,
  mkdir,
  readdir,
  readFile,
  rm,
  stat,
  truncate,
  writeFile,
} from 'node:fs/promises'
import path from 'node:path'
import { backupKey, type PatchBackups } from '@patch-backup/core'
import { contentPathFor, indexPathFor } from '@patch-backup/store-cacache'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { bytesOf } from './fixtures/content.mjs'
import { failure, settle } from './support/outcome.js'
import { createWorkspace, openStack, type Stack, type Workspace } from './support/workspace.js'

const A = 'node_modules/pkg/a.js'
const B = 'node_modules/pkg/b.js'
const C = 'node_modules/pkg/c.bin'

let ws: Workspace
let stack: Stack
let backups: PatchBackups
const at = (file: string) => path.join(ws.project, file)

async function write(file: string, bytes: string | Buffer): Promise<void> {
  await mkdir(path.dirname(at(file)), { recursive: true })
  await writeFile(at(file), bytes)
}

beforeEach(async () => {
  ws = await createWorkspace('corrupt')
  stack = openStack(ws)
  backups = stack.backups
  await write(A, 'original a\n')
  await write(B, 'original b\n')
  await write(C, bytesOf('c', 300_000))
})
afterEach(() => ws.dispose())

/** Backs up A, B, C under `uuid`, then "patches" them; returns their BackupInfo. */
async function backedUpAndPatched(uuid = 'p1') {
  const { files } = await backups.createBackups(uuid, [A, B, C])
  for (const file of [A, B, C]) await write(file, `patched ${file}\n`)
  return files
}

const damage: Record<string, (file: string) => Promise<void>> = {
  'a flipped byte': async (file) => {
    const bytes = await readFile(file)
    const i = Math.floor(bytes.length / 2)
    bytes[i] = (bytes[i] ?? 0) ^ 0x01
    await writeFile(file, bytes)
  },
  'a blob truncated to half': async (file) =>
    truncate(file, Math.floor((await stat(file)).size / 2)),
  'a blob truncated to nothing': async (file) => truncate(file, 0),
  'a blob with bytes appended': async (file) => appendFile(file, 'tail'),
}

describe('damaged blobs, on cacache + JSON manifests', () => {
  for (const [what, harm] of Object.entries(damage)) {
    it(`${what}: restore throws INTEGRITY_MISMATCH and leaves the target as it was; verify names the file`, async () => {
      const files = await backedUpAndPatched()
      await harm(contentPathFor(ws.cachePath, files[C]!.integrity))
      const before = await readFile(at(C))
      const mode = (await stat(at(C))).mode

      const error = await failure(() => backups.restoreBackup('p1', C))
      expect(error.code).toBe('INTEGRITY_MISMATCH')
      expect(await readFile(at(C))).toEqual(before)
      expect((await stat(at(C))).mode).toBe(mode)
      expect((await readdir(path.dirname(at(C)))).sort()).toEqual(['a.js', 'b.js', 'c.bin'])

      const report = await backups.verify()
      expect(report).toMatchObject({ patches: 1, files: 3, ok: 2 })
      expect(report.problems).toEqual([
        expect.objectContaining({ uuid: 'p1', path: C, code: 'INTEGRITY_MISMATCH' }),
      ])

      const all = await backups.restoreAllBackups('p1')
      expect(all.restored).toEqual([A, B])
      expect(all.failed).toEqual([C])
      expect(all.errors[0]).toMatchObject({ path: C, code: 'INTEGRITY_MISMATCH' })
      await expect(readFile(at(A), 'utf8')).resolves.toBe('original a\n')
      expect(await readFile(at(C))).toEqual(before)

      // repair drops the bad entry and only it; verify is clean after.
      const repaired = await backups.repair()
      expect(repaired.dropped.map((p) => p.path)).toEqual([C])
      await expect(backups.verify()).resolves.toMatchObject({ ok: 2, problems: [] })
    })
  }

  it('a missing blob: restoreAllBackups reports it in failed with BLOB_MISSING and restores the rest', async () => {
    const files = await backedUpAndPatched()
    await rm(contentPathFor(ws.cachePath, files[B]!.integrity))
    const result = await backups.restoreAllBackups('p1')
    expect(result.restored).toEqual([A, C])
    expect(result.failed).toEqual([B])
    expect(result.errors).toEqual([
      { path: B, code: 'BLOB_MISSING', message: expect.stringContaining(B) },
    ])
    await expect(readFile(at(A), 'utf8')).resolves.toBe('original a\n')
    expect((await readFile(at(C))).equals(bytesOf('c', 300_000))).toBe(true)
    await expect(readFile(at(B), 'utf8')).resolves.toBe(`patched ${B}\n`)
    const report = await backups.verify('p1')
    expect(report.problems).toEqual([
      expect.objectContaining({ uuid: 'p1', path: B, code: 'BLOB_MISSING' }),
    ])
  })

  it('a lost or garbled index entry: restore still works (bytes are read by digest) and gc keeps the bytes', async () => {
    const files = await backedUpAndPatched()
    const bucketA = indexPathFor(ws.cachePath, backupKey('p1', A))
    await rm(bucketA)
    const bucketB = indexPathFor(ws.cachePath, backupKey('p1', B))
    await writeFile(bucketB, 'garbage\tnot an entry\n')
    await backups.gc()
    await expect(backups.verify()).resolves.toMatchObject({ ok: 3, problems: [] })
    await expect(backups.restoreAllBackups('p1')).resolves.toMatchObject({ failed: [] })
    await expect(readFile(at(A), 'utf8')).resolves.toBe('original a\n')
    await expect(readFile(at(B), 'utf8')).resolves.toBe('original b\n')
    expect(files[A]).toBeDefined()
  })
})

const manifestDamage: Record<string, (file: string) => Promise<void>> = {
  truncated: async (file) => truncate(file, Math.floor((await stat(file)).size / 2)),
  empty: async (file) => truncate(file, 0),
  'not JSON': async (file) => writeFile(file, 'this is not json {'),
  'binary garbage': async (file) => writeFile(file, bytesOf('garbage', 512)),
  'JSON of the wrong shape': async (file) => writeFile(file, '[1, 2, 3]\n'),
  'a manifest of another uuid': async (file) =>
    writeFile(file, JSON.stringify({ uuid: 'someone-else', patchedAt: 'x', files: {} })),
}

describe('damaged manifests, on cacache + JSON manifests', () => {
  for (const [what, harm] of Object.entries(manifestDamage)) {
    it(`${what}: every call for that uuid throws MANIFEST_CORRUPT with the file; other uuids keep working`, async () => {
      await backedUpAndPatched('broken')
      await write(A, 'original a\n')
      await backups.createBackups('fine', [A, B])
      await write(A, 'patched again\n')
      const file = stack.manifests.manifestPath('broken')
      await harm(file)
      const damaged = await readFile(file)

      const calls: [string, () => Promise<unknown>][] = [
        ['createBackup', () => backups.createBackup('broken', A)],
        ['createBackups', () => backups.createBackups('broken', [A])],
        ['restoreBackup', () => backups.restoreBackup('broken', A)],
        ['restoreAllBackups', () => backups.restoreAllBackups('broken')],
        ['listBackups', () => backups.listBackups('broken')],
        ['getBackupInfo', () => backups.getBackupInfo('broken', A)],
        ['hasBackup', () => backups.hasBackup('broken', A)],
        ['getPatchMetadata', () => backups.getPatchMetadata('broken')],
        ['cleanupBackups', () => backups.cleanupBackups('broken')],
      ]
      for (const [name, call] of calls) {
        const error = await failure(call)
        expect(error.code, name).toBe('MANIFEST_CORRUPT')
        expect(error.path, name).toBe(file)
        expect(error.message, name).toContain(file)
      }
      // Nothing rewrote or removed the damaged file: it is there to be inspected or restored.
      expect(await readFile(file)).toEqual(damaged)

      // The other patch is untouched by all of this.
      await expect(backups.listAllPatches()).resolves.toEqual(['broken', 'fine'])
      await expect(backups.listBackups('fine')).resolves.toEqual([A, B])
      await expect(backups.restoreBackup('fine', A)).resolves.toBe(true)
      await expect(readFile(at(A), 'utf8')).resolves.toBe('original a\n')
      await write(C, 'new c')
      await expect(backups.createBackup('fine', C)).resolves.toMatchObject({ size: 5 })
      await expect(backups.restoreAllBackups('fine')).resolves.toMatchObject({ failed: [] })

      const report = await backups.verify()
      expect(report.ok).toBe(3)
      expect(report.problems).toEqual([
        expect.objectContaining({ uuid: 'broken', code: 'MANIFEST_CORRUPT' }),
      ])
      // gc frees nothing the unreadable manifest may still reference.
      await expect(backups.gc()).resolves.toMatchObject({ removedKeys: 0 })
      const outcome = await settle(() => backups.cleanupBackups('fine'))
      expect(outcome.ok).toBe(true)
    })
  }
})
