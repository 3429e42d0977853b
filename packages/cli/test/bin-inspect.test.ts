import { rm } from 'node:fs/promises'
import path from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { json, type Sandbox, sandbox } from './helpers.js'

const TEXT = 'node_modules/pkg/index.js'
const BIN = 'node_modules/pkg/logo.bin'
const GONE = 'node_modules/pkg/gone.js'

let box: Sandbox
beforeEach(async () => {
  box = await sandbox({
    [TEXT]: 'one\ntwo\nthree\n',
    [BIN]: Buffer.from([0, 1, 2, 3, 255]),
    [GONE]: 'bye\n',
  })
  expect((await box.cli(['backup', 'p-1', TEXT, BIN, GONE])).code).toBe(0)
})
afterEach(() => box.remove())

describe('list', () => {
  it('lists every patch with files and size, aligned', async () => {
    await box.cli(['backup', 'p-2', TEXT])
    const r = await box.cli(['list'])
    expect(r.code).toBe(0)
    const lines = r.stdout.trimEnd().split('\n')
    expect(lines[0]).toMatch(/^PATCH\s+FILES\s+ORIGINAL SIZE\s+PATCHED AT$/)
    expect(lines[1]).toMatch(/^p-1\s+3\s+23 B\s+\d{4}-/)
    expect(lines[2]).toMatch(/^p-2\s+1\s+14 B\s+\d{4}-/)
    expect(new Set(lines.map((l) => l.search(/\d{4}-|PATCHED AT/))).size).toBe(1)
    const doc = json<{ patches: { uuid: string; files: number; size: number }[] }>(
      await box.cli(['list', '--json']),
    )
    expect(doc.patches.map((p) => [p.uuid, p.files, p.size])).toEqual([
      ['p-1', 3, 23],
      ['p-2', 1, 14],
    ])
  })

  it("lists one patch's files, and exits 1 for an unknown one", async () => {
    const r = await box.cli(['list', 'p-1'])
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/^Patch p-1, patched at .*: 3 files, 23 B\n/)
    expect(r.stdout).toContain(GONE)
    const doc = json<{ uuid: string; files: { path: string }[] }>(
      await box.cli(['list', 'p-1', '--json']),
    )
    expect(doc.files.map((f) => f.path)).toEqual([GONE, TEXT, BIN])
    const missing = await box.cli(['list', 'p-9', '--json'])
    expect(missing.code).toBe(1)
    expect(json(missing)).toMatchObject({ error: { code: 'PATCH_NOT_FOUND' } })
  })

  it('says so when the store is empty', async () => {
    await box.cli(['cleanup', 'p-1'])
    const r = await box.cli(['list'])
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/^No patches in .+\.\n$/)
    expect(json(await box.cli(['list', '--json']))).toMatchObject({ patches: [] })
  })
})

describe('info', () => {
  it("shows a patch's metadata", async () => {
    const r = await box.cli(['info', 'p-1'])
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(
      /^patch\s+p-1\npatched at\s+\d{4}-.*\nfiles\s+3\nsize\s+23 B\nproject\s+\/.*\/project\nPolicy in force:\n/,
    )
    expect(r.stdout).toMatch(
      /\n {2}compression\s+off\n {2}encryption\s+off\n {2}limits\s+none\n {2}retention\s+none\n {2}config\s+none \(defaults\)\n$/,
    )
    expect(json(await box.cli(['info', 'p-1', '--json']))).toEqual({
      uuid: 'p-1',
      patchedAt: expect.any(String),
      files: 3,
      size: 23,
      projectRoot: expect.stringMatching(/\/project$/),
      extra: {},
      policy: { config: null, compression: null, encryption: null, limits: null, retention: null },
    })
  })

  it("shows one file's backup, and exits 1 for a file it does not have", async () => {
    const r = await box.cli(['info', 'p-1', TEXT])
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/file\s+node_modules\/pkg\/index\.js\n/)
    expect(r.stdout).toMatch(/integrity\s+sha256-/)
    const doc = json<{ backup: { size: number; integrity: string } }>(
      await box.cli(['info', 'p-1', TEXT, '--json']),
    )
    expect(doc.backup.size).toBe(14)
    const missing = await box.cli(['info', 'p-1', 'node_modules/x.js', '--json'])
    expect(missing.code).toBe(1)
    expect(json(missing)).toMatchObject({ error: { code: 'FILE_NOT_FOUND' } })
  })
})

describe('status', () => {
  it('shows each file as original, modified or missing before anything is recorded', async () => {
    await box.write(TEXT, 'one\nTWO\nthree\n')
    await rm(path.join(box.project, GONE))
    const r = await box.cli(['status', 'p-1'])
    expect(r.code).toBe(0)
    expect(r.stdout).toBe(
      [
        'Patch p-1: 3 files, 1 original, 1 modified, 1 missing',
        `  missing   ${GONE}`,
        `  modified  ${TEXT}`,
        `  original  ${BIN}`,
        "hint: run 'patch-backup record p-1' right after applying a patch, so that status and restore can tell its changes from later ones.",
        '',
      ].join('\n'),
    )
    const doc = json<{
      files: { path: string; state: string; size: number; backupIntegrity: string }[]
      counts: object
    }>(await box.cli(['status', 'p-1', '--json']))
    expect(doc.files.map((f) => [f.path, f.state, f.size])).toEqual([
      [GONE, 'missing', 4],
      [TEXT, 'modified', 14],
      [BIN, 'original', 5],
    ])
    expect(doc.files[0]).not.toHaveProperty('currentIntegrity')
    expect(doc.files[1]).toEqual({
      path: TEXT,
      state: 'modified',
      size: 14,
      backupIntegrity: expect.stringMatching(/^sha256-/),
      currentIntegrity: expect.stringMatching(/^sha256-/),
    })
    expect(doc.counts).toEqual({
      original: 1,
      patched: 0,
      drifted: 0,
      modified: 1,
      'mode-changed': 0,
      missing: 1,
      directory: 0,
      symlink: 0,
      'not-a-file': 0,
      unreadable: 0,
    })
  })

  it('sees a change that keeps the size', async () => {
    await box.write(TEXT, 'one\ntwo\nthreE\n')
    const doc = json<{ files: { path: string; state: string }[] }>(
      await box.cli(['status', 'p-1', '--json']),
    )
    expect(doc.files.find((f) => f.path === TEXT)?.state).toBe('modified')
  })

  it('exits 1 for an unknown patch', async () => {
    const r = await box.cli(['status', 'p-9'])
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/^error: No patch p-9/)
  })
})

describe('diff', () => {
  it('shows a unified diff of a text file', async () => {
    await box.write(TEXT, 'one\nTWO\nthree\n')
    const r = await box.cli(['diff', 'p-1', TEXT])
    expect(r.code).toBe(0)
    expect(r.stdout).toBe(
      [
        `--- a/${TEXT}\tbackup`,
        `+++ b/${TEXT}\tcurrent`,
        '@@ -1,3 +1,3 @@',
        ' one',
        '-two',
        '+TWO',
        ' three',
        '',
      ].join('\n'),
    )
    const doc = json<{ comparison: string; diff: string; state: string }>(
      await box.cli(['diff', 'p-1', TEXT, '--json']),
    )
    expect(doc.state).toBe('modified')
    expect(doc.comparison).toBe('text')
    expect(doc.diff).toContain('+TWO')
  })

  it('says a binary file differs, with both sizes and hashes', async () => {
    await box.write(BIN, Buffer.from([0, 9, 9]))
    const r = await box.cli(['diff', 'p-1', BIN])
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/^Binary file node_modules\/pkg\/logo\.bin differs from its backup:\n/)
    expect(r.stdout).toMatch(/backup\s+5 B\s+sha256-\S+\n/)
    expect(r.stdout).toMatch(/current\s+3 B\s+sha256-\S+\n/)
    const doc = json<{
      comparison: string
      backup: { size: number; integrity: string }
      current: { size: number; integrity: string }
    }>(await box.cli(['diff', 'p-1', BIN, '--json']))
    expect(doc.comparison).toBe('binary')
    expect(doc.backup.size).toBe(5)
    expect(doc.current.size).toBe(3)
    expect(doc.current.integrity).not.toBe(doc.backup.integrity)
  })

  it('reports no differences, and a deleted file as removed lines', async () => {
    const same = await box.cli(['diff', 'p-1', TEXT])
    expect(same.stdout).toBe(`No differences: ${TEXT} equals its backup.\n`)
    await rm(path.join(box.project, GONE))
    const gone = await box.cli(['diff', 'p-1', GONE])
    expect(gone.code).toBe(0)
    expect(gone.stdout).toContain('+++ /dev/null')
    expect(gone.stdout).toContain('-bye')
    const doc = json<{ state: string; current: unknown }>(
      await box.cli(['diff', 'p-1', GONE, '--json']),
    )
    expect(doc).toMatchObject({ state: 'missing', current: null })
  })

  it('exits 1 for a file the patch does not have', async () => {
    const r = await box.cli(['diff', 'p-1', 'node_modules/x.js', '--json'])
    expect(r.code).toBe(1)
    expect(json(r)).toMatchObject({ error: { code: 'FILE_NOT_FOUND' } })
  })
})
