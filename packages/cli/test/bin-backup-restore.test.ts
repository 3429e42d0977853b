import { readdir, readFile, stat } from 'node:fs/promises'
import path from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { json, type Sandbox, sandbox } from './helpers.js'
import { cacheFixtureHooks } from './hooks.js'

const A = 'node_modules/lodash/index.js'
const B = 'node_modules/lodash/template.js'
const C = 'node_modules/minimist/index.js'

let box: Sandbox
beforeEach(async () => {
  box = await sandbox({ [A]: 'module.exports = 1\n', [B]: 'eval(s)\n', [C]: 'minimist\n' })
})
afterEach(() => box.remove())

const read = (file: string) => readFile(path.join(box.project, file), 'utf8')

interface BackupJson {
  uuid: string
  size: number
  backedUp: string[]
  failed: string[]
  errors: { path: string; code: string; message: string }[]
  files: Record<string, { integrity: string; size: number }>
}

interface RestoreJson {
  uuid: string
  dryRun: boolean
  atomic: boolean
  restored: string[]
  failed: string[]
  errors: { path: string; code: string; message: string }[]
  drifted: { path: string; patchedIntegrity: string; currentIntegrity: string }[]
  files?: { path: string; size: number; integrity: string; current: string; action: string }[]
}

/** Every file under `dir` with its bytes and mtime: proof that nothing was written. */
async function snapshot(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {}
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue
    const file = path.join(entry.parentPath ?? entry.path, entry.name)
    const info = await stat(file)
    out[path.relative(dir, file)] = `${info.mtimeMs}:${(await readFile(file)).toString('base64')}`
  }
  return out
}

describe('backup', () => {
  it('backs up files and prints an aligned table (exit 0)', async () => {
    const r = await box.cli(['backup', 'fix-1', A, B, C])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stderr).toBe('')
    expect(r.stdout).toMatch(/^Backed up 3 files under patch fix-1 \(\d+ B\)\n/)
    const lines = r.stdout.trimEnd().split('\n').slice(1)
    expect(lines).toHaveLength(3)
    // Sizes right-aligned in one column, integrities start in one column.
    const columns = new Set(lines.map((l) => l.indexOf('sha256-')))
    expect(columns.size).toBe(1)
    expect(r.stdout).not.toContain('\u001b[') // not a TTY: no colour
  })

  it('prints one JSON document with every file under --json', async () => {
    const r = await box.cli(['backup', 'fix-1', A, B, '--json'])
    expect(r.code).toBe(0)
    const doc = json<BackupJson>(r)
    expect(doc.uuid).toBe('fix-1')
    expect(doc.backedUp).toEqual([A, B])
    expect(doc.failed).toEqual([])
    expect(doc.files[A]?.integrity).toMatch(/^sha256-/)
    expect(doc.size).toBe('module.exports = 1\n'.length + 'eval(s)\n'.length)
  })

  it('exits 1 naming a file it cannot read, and keeps the others', async () => {
    const r = await box.cli(['backup', 'fix-1', A, 'node_modules/nope.js'])
    expect(r.code).toBe(1)
    expect(r.stdout).toContain(A)
    expect(r.stderr).toMatch(
      /Could not back up 1 file:\n\s+node_modules\/nope\.js\s+SOURCE_UNREADABLE/,
    )
    const j = await box.cli(['backup', 'fix-2', A, 'node_modules/nope.js', '--json'])
    expect(j.code).toBe(1)
    const doc = json<BackupJson>(j)
    expect(doc.failed).toEqual(['node_modules/nope.js'])
    expect(doc.errors[0]?.code).toBe('SOURCE_UNREADABLE')
  })

  it('rejects an invalid uuid as a usage error (exit 2) with the error code', async () => {
    const r = await box.cli(['backup', '../escape', A])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/^error: .*uuid/i)
    const j = await box.cli(['backup', '../escape', A, '--json'])
    expect(j.code).toBe(2)
    expect(json(j)).toEqual({ error: { code: 'INVALID_UUID', message: expect.any(String) } })
  })

  it('keeps the first backup unless --overwrite', async () => {
    await box.cli(['backup', 'fix-1', A])
    await box.write(A, 'patched\n')
    await box.cli(['backup', 'fix-1', A])
    expect((await box.cli(['status', 'fix-1'])).stdout).toContain('modified')
    await box.cli(['backup', 'fix-1', A, '--overwrite'])
    expect((await box.cli(['status', 'fix-1'])).stdout).toContain('original')
  })
})

describe('restore', () => {
  beforeEach(async () => {
    expect((await box.cli(['backup', 'fix-1', A, B, C])).code).toBe(0)
    await box.write(A, 'patched A\n')
    await box.write(B, 'patched B\n')
  })

  it('restores every file of a patch, all or nothing (exit 0)', async () => {
    const r = await box.cli(['restore', 'fix-1'])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toMatch(
      /^Restored 2 files of patch fix-1 \(all or nothing\); 1 already original, left as it was\n/,
    )
    expect(r.stdout).toContain("'patch-backup undo fix-1' puts back what this restore replaced.")
    expect(await read(A)).toBe('module.exports = 1\n')
    expect(await read(B)).toBe('eval(s)\n')
  })

  it('restores only the files named, and reports JSON', async () => {
    const r = await box.cli(['restore', 'fix-1', B, '--json'])
    expect(r.code).toBe(0)
    expect(json<RestoreJson>(r)).toEqual({
      uuid: 'fix-1',
      dryRun: false,
      atomic: false,
      restored: [B],
      failed: [],
      errors: [],
      drifted: [],
    })
    expect(await read(A)).toBe('patched A\n')
    expect(await read(B)).toBe('eval(s)\n')
  })

  it('exits 1 for an unknown uuid, with PATCH_NOT_FOUND under --json', async () => {
    const r = await box.cli(['restore', 'no-such-patch'])
    expect(r.code).toBe(1)
    expect(r.stdout).toBe('')
    expect(r.stderr).toMatch(/^error: No patch no-such-patch/)
    expect(r.stderr.trim().split('\n')).toHaveLength(1)
    const j = await box.cli(['restore', 'no-such-patch', '--json'])
    expect(j.code).toBe(1)
    expect(json(j)).toEqual({
      error: { code: 'PATCH_NOT_FOUND', message: expect.stringContaining('no-such-patch') },
    })
  })

  it('exits 1 for a file the patch does not have', async () => {
    const r = await box.cli(['restore', 'fix-1', 'node_modules/other.js', '--json'])
    expect(r.code).toBe(1)
    expect(json<RestoreJson>(r).errors).toEqual([
      { path: 'node_modules/other.js', code: 'FILE_NOT_FOUND', message: expect.any(String) },
    ])
  })

  it('--dry-run reads and verifies everything and changes nothing on disk', async () => {
    const before = { project: await snapshot(box.project), store: await snapshot(box.store) }
    const r = await box.cli(['restore', 'fix-1', '--dry-run'])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toMatch(
      /^Dry run: 3 files of patch fix-1 verified; 2 would be restored, 1 already original\. Nothing was written\.\n/,
    )
    expect(r.stdout).toMatch(/modified\s+node_modules\/lodash\/index\.js\s+\d+ B\n/)
    expect(r.stdout).toMatch(
      /original\s+node_modules\/minimist\/index\.js\s+\d+ B\s+already original\n/,
    )
    const j = await box.cli(['restore', 'fix-1', '--dry-run', '--json'])
    expect(j.code).toBe(0)
    const doc = json<RestoreJson>(j)
    expect(doc.dryRun).toBe(true)
    expect(doc.restored).toEqual([A, B, C])
    expect(doc.atomic).toBe(true)
    expect(doc.files?.map((f) => [f.path, f.current, f.action])).toEqual([
      [A, 'modified', 'restore'],
      [B, 'modified', 'restore'],
      [C, 'original', 'unchanged'],
    ])
    expect({ project: await snapshot(box.project), store: await snapshot(box.store) }).toEqual(
      before,
    )
  })

  it('--no-atomic: exits 1 on a corrupt backup, leaves that file untouched, restores the rest', async () => {
    const { files } = json<BackupJson>(await box.cli(['backup', 'fix-1', A, '--json']))
    await cacheFixtureHooks(box.cache).corrupt(files[A]?.integrity as string)
    const r = await box.cli(['restore', 'fix-1', '--no-atomic'])
    expect(r.code).toBe(1)
    expect(r.stdout).toMatch(/^Restored 2 files of patch fix-1\n/)
    expect(r.stderr).toMatch(
      /Could not restore 1 file.*\n\s+node_modules\/lodash\/index\.js\s+INTEGRITY_MISMATCH/,
    )
    expect(await read(A)).toBe('patched A\n')
    expect(await read(B)).toBe('eval(s)\n')
    const j = await box.cli(['restore', 'fix-1', A, '--json'])
    expect(j.code).toBe(1)
    expect(json<RestoreJson>(j).errors).toEqual([
      { path: A, code: 'INTEGRITY_MISMATCH', message: expect.any(String) },
    ])
    const dry = await box.cli(['restore', 'fix-1', '--dry-run', '--json'])
    expect(dry.code).toBe(1)
    expect(json<RestoreJson>(dry).failed).toEqual([A])
    expect(await read(A)).toBe('patched A\n')
  })
})
