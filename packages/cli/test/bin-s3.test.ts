import { readdir, readFile } from 'node:fs/promises'
import path from 'node:path'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { createS3StoreFromEnv, parseS3Url } from '../../store-s3/src/index.js'
import { CREDENTIALS, type S3TestServer, startS3Server } from '../../store-s3/test/server.js'
import { openPatchBackups } from '../src/index.js'
import { cleanEnv, json, type Sandbox, sandbox } from './helpers.js'

// `--store s3://…`: the bytes and the manifests go to a real S3-compatible server (s3rver on
// 127.0.0.1); only this machine's restore journal and undo stay under --dir.
const A = 'node_modules/lodash/index.js'
const B = 'node_modules/lodash/logo.bin'
const BINARY = Buffer.from([0, 1, 2, 250, 255])

let s3: S3TestServer
let box: Sandbox
let env: NodeJS.ProcessEnv
let url: string

beforeAll(async () => {
  s3 = await startS3Server()
})
afterAll(() => s3?.stop())

let n = 0
beforeEach(async () => {
  box = await sandbox({ [A]: 'module.exports = 1\n', [B]: BINARY })
  env = cleanEnv(s3.env)
  // A prefix per test, so each starts with an empty store.
  url = `s3://${s3.bucket}/cli-${++n}`
})
afterEach(() => box.remove())

const remote = (args: string[], extraEnv: NodeJS.ProcessEnv = {}) =>
  box.cli(['--store', url, ...args], { env: { ...env, ...extraEnv } })

describe('--store s3://bucket/prefix', () => {
  it('backs up to the bucket, and status and restore read from it', async () => {
    const backup = await remote(['backup', 'fix-1', A, B])
    expect(backup.code, backup.stderr).toBe(0)
    expect(backup.stderr).toBe('')
    expect(backup.stdout).toMatch(/^Backed up 2 files under patch fix-1 \(24 B\)\n/)

    // Bytes and manifest in the bucket under the prefix; no local cacache store, no local manifest.
    const objects = await s3.objects()
    expect(objects.filter((o) => o.startsWith(`cli-${n}/content/sha256/`))).toHaveLength(2)
    expect(objects.filter((o) => o.startsWith(`cli-${n}/keys/`))).toHaveLength(2)
    expect(objects.filter((o) => o.startsWith(`cli-${n}/manifests/fix-1/`))).toHaveLength(1)
    expect(await readdir(box.store).catch(() => [])).not.toContain('_cacache')
    expect(await readdir(path.join(box.store, '_patches', 'manifests')).catch(() => [])).toEqual([])
    expect(json(await remote(['info', 'fix-1', '--json']))).toMatchObject({ files: 2 })
    const listed = await remote(['list', 'fix-1', '--json'])
    for (const file of [A, B]) expect(listed.stdout).toContain(file)

    await box.write(A, 'module.exports = 2 // patched\n')
    expect((await remote(['record', 'fix-1'])).code).toBe(0)
    await box.write(B, Buffer.from('gone wrong'))
    const status = await remote(['status', 'fix-1'])
    expect(status.code).toBe(0)
    expect(status.stdout).toBe(
      ['Patch fix-1: 2 files, 1 patched, 1 drifted', `  patched  ${A}`, `  drifted  ${B}`, ''].join(
        '\n',
      ) +
        'hint: drifted files changed after the patch was recorded; restore refuses them unless --force.\n',
    )
    const statusJson = json<{ counts: Record<string, number> }>(
      await remote(['status', 'fix-1', '--json']),
    )
    expect(statusJson.counts).toEqual({
      original: 0,
      patched: 1,
      drifted: 1,
      modified: 0,
      'mode-changed': 0,
      missing: 0,
      directory: 0,
      symlink: 0,
      'not-a-file': 0,
      unreadable: 0,
    })

    const dry = await remote(['restore', 'fix-1', '--dry-run', '--force', '--json'])
    expect(dry.code, dry.stderr).toBe(0)
    const restored = await remote(['restore', 'fix-1', '--force', '--json'])
    expect(restored.code, restored.stderr).toBe(0)
    expect(json(restored)).toMatchObject({ atomic: true, restored: [A, B], failed: [] })
    expect(await readFile(path.join(box.project, A), 'utf8')).toBe('module.exports = 1\n')
    expect((await readFile(path.join(box.project, B))).equals(BINARY)).toBe(true)

    const verify = await remote(['verify'])
    expect(verify).toMatchObject({ code: 0, stdout: 'Verified 2 files in 1 patch: 2 ok\n' })
    // The snapshot the forced restore kept went to the bucket too: undo reads it back.
    expect((await remote(['undo', 'fix-1'])).code).toBe(0)
    expect(await readFile(path.join(box.project, B), 'utf8')).toBe('gone wrong')
  })

  it('PATCH_BACKUP_STORE selects it as well; --store wins over it', async () => {
    const viaEnv = (args: string[], store: string) =>
      box.cli(args, { env: { ...env, PATCH_BACKUP_STORE: store } })
    expect((await viaEnv(['backup', 'env-1', A], url)).code).toBe(0)
    expect((await s3.objects()).some((o) => o.startsWith(`cli-${n}/keys/`))).toBe(true)
    await box.write(A, 'changed\n')
    const restored = await viaEnv(['restore', 'env-1', '--json'], url)
    expect(restored.code, restored.stderr).toBe(0)
    expect(await readFile(path.join(box.project, A), 'utf8')).toBe('module.exports = 1\n')
    // A bad PATCH_BACKUP_STORE does not matter when --store is given.
    const flagged = await box.cli(['--store', url, 'verify', '--json'], {
      env: { ...env, PATCH_BACKUP_STORE: 'nonsense' },
    })
    expect(json(flagged)).toMatchObject({ files: 1, ok: 1 })
  })

  it('runs gc on the bucket (its manifests are there), and keeps every recorded byte', async () => {
    expect((await remote(['backup', 'fix-1', A])).code).toBe(0)
    const r = await remote(['gc', '--json'])
    expect(r.code, r.stderr).toBe(0)
    expect(json(r)).toEqual({ removedKeys: 0, removedBlobs: 0, freedBytes: 0 })
    // --force is still accepted, for older scripts.
    expect((await remote(['gc', '--force', '--json'])).code).toBe(0)
    expect(json(await remote(['verify', '--json']))).toMatchObject({ files: 1, ok: 1 })
  })

  it('another machine (other --dir, other HOME) lists, inspects and restores byte for byte', async () => {
    expect((await remote(['backup', 'fix-1', A, B])).code).toBe(0)
    await box.write(A, 'module.exports = 2 // patched\n')
    expect((await remote(['record', 'fix-1'])).code).toBe(0)
    // The second machine: its own root and home, the same project as checked out there, patched.
    const other = await sandbox({ [A]: 'module.exports = 2 // patched\n', [B]: 'patched too' })
    try {
      const home = path.join(other.store, 'home')
      const there = (args: string[]) =>
        other.cli(['--store', url, ...args], { env: { ...env, HOME: home } })
      expect(json(await there(['list', '--json']))).toMatchObject({
        patches: [{ uuid: 'fix-1', files: 2 }],
      })
      expect(json(await there(['info', 'fix-1', '--json']))).toMatchObject({ files: 2, size: 24 })
      const file = json(await there(['info', 'fix-1', B, '--json']))
      expect(file).toMatchObject({ path: B, backup: { size: BINARY.length } })
      const status = json<{ counts: Record<string, number> }>(
        await there(['status', 'fix-1', '--json']),
      )
      expect(status.counts).toMatchObject({ patched: 1 })
      const restored = await there(['restore', 'fix-1', '--force', '--json'])
      expect(restored.code, restored.stderr).toBe(0)
      expect(await readFile(path.join(other.project, A), 'utf8')).toBe('module.exports = 1\n')
      expect((await readFile(path.join(other.project, B))).equals(BINARY)).toBe(true)
      // Its undo is its own: the first machine has none to apply.
      const undoHere = await remote(['undo', 'fix-1', '--json'])
      expect(json<{ undone: string[] }>(undoHere).undone ?? []).toEqual([])
      expect((await there(['undo', 'fix-1'])).code).toBe(0)
      expect(await readFile(path.join(other.project, B), 'utf8')).toBe('patched too')
    } finally {
      await other.remove()
    }
  })

  it('a root an older CLI wrote (manifests local) keeps working; migrate-manifests moves them', async () => {
    // What an older CLI did with --store: bytes in the bucket, the manifest under --dir.
    const location = parseS3Url(url)
    const older = openPatchBackups({
      dir: box.store,
      cwd: box.project,
      store: createS3StoreFromEnv({ ...location, env, clientConfig: { credentials: CREDENTIALS } }),
    })
    const made = await older.createBackups('old-1', [A, B])
    expect(made.errors).toEqual([])
    const localFile = path.join(box.store, '_patches', 'manifests', 'old-1.json')
    expect(JSON.parse(await readFile(localFile, 'utf8')).files).toHaveProperty([A])

    expect(json(await remote(['list', '--json']))).toMatchObject({ patches: [{ uuid: 'old-1' }] })
    await box.write(A, 'changed\n')
    expect((await remote(['restore', 'old-1', A, '--json'])).code).toBe(0)
    expect(await readFile(path.join(box.project, A), 'utf8')).toBe('module.exports = 1\n')

    const dry = await remote(['migrate-manifests', '--dry-run', '--json'])
    expect(dry.code, dry.stderr).toBe(0)
    expect(json(dry)).toEqual({
      to: url,
      dryRun: true,
      moved: [{ uuid: 'old-1', files: 2, merged: false }],
      errors: [],
    })
    expect((await s3.objects()).filter((o) => o.startsWith(`cli-${n}/manifests/`))).toEqual([])
    const human = await remote(['migrate-manifests', '--dry-run'])
    expect(human.stdout).toMatch(/^Would move 1 manifest to s3:\/\/.*:\n {2}old-1 +2 files\n$/)

    const moved = await remote(['migrate-manifests', '--json'])
    expect(json(moved)).toMatchObject({ dryRun: false, moved: [{ uuid: 'old-1', files: 2 }] })
    await expect(readFile(localFile)).rejects.toThrow()
    const other = await sandbox({ [A]: 'patched\n' })
    try {
      const there = (args: string[]) => other.cli(['--store', url, ...args], { env })
      expect(json(await there(['list', '--json']))).toMatchObject({ patches: [{ uuid: 'old-1' }] })
      expect((await there(['restore', 'old-1', '--json'])).code).toBe(0)
      expect((await readFile(path.join(other.project, B))).equals(BINARY)).toBe(true)
    } finally {
      await other.remove()
    }
    const again = await remote(['migrate-manifests'])
    expect(again.stdout).toMatch(/^No local manifests to move/)
    // Without a bucket there is nowhere to move them: a usage error.
    expect((await box.cli(['migrate-manifests'], { env })).code).toBe(2)
  })

  it('a URL that names no store is a usage error (exit 2), before anything runs', async () => {
    for (const bad of [
      '/var/backups',
      'https://example.com/x',
      's3://bucket:9000/p',
      's3://b/p?x=1',
    ]) {
      const r = await box.cli(['--store', bad, 'backup', 'fix-1', A], { env })
      expect(r.code, bad).toBe(2)
      expect(r.stdout).toBe('')
      expect(r.stderr).toMatch(/^error: --store: .* is not a store URL: /)
      expect(r.stderr).toContain('\nUsage: patch-backup backup [options] <uuid> <files...>\n')
      const j = await box.cli(['verify', '--json', '--store', bad], { env })
      expect(j.code).toBe(2)
      expect(json(j)).toEqual({ error: { code: 'USAGE_ERROR', message: expect.any(String) } })
    }
    const fromEnv = await box.cli(['list'], { env: { ...env, PATCH_BACKUP_STORE: 'ftp://x' } })
    expect(fromEnv.code).toBe(2)
    expect(fromEnv.stderr).toMatch(/^error: PATCH_BACKUP_STORE: "ftp:\/\/x" is not a store URL/)
    // Nothing was backed up anywhere.
    expect(await readdir(box.store).catch(() => [])).toEqual([])
  })

  it('reports an unreachable server as STORE_ERROR (exit 1) and records nothing', async () => {
    const down = { ...env, AWS_ENDPOINT_URL: 'http://127.0.0.1:9', AWS_MAX_ATTEMPTS: '1' }
    const r = await box.cli(['--store', url, 'backup', 'fix-1', A, '--json'], { env: down })
    expect(r.code).toBe(1)
    // The manifest is read from the bucket first: the whole command fails with STORE_ERROR.
    expect(json(r)).toMatchObject({ error: { code: 'STORE_ERROR' } })
    expect(json(await box.cli(['list', '--json'], { env }))).toMatchObject({ patches: [] })
  })
})
