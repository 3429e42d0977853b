// The seed module's callers, as its own tests call it: absolute paths in a temp dir under
// os.tmpdir(), HOME pointed at that dir, process.cwd() somewhere else. Against the built package.
import { createHash } from 'node:crypto'
import { mkdir, mkdtemp, readdir, readFile, realpath, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'

type Api = typeof import('../src/index.js')
const api: Api = await import(new URL('../dist/index.js', import.meta.url).href)

const sha256 = (bytes: string | Buffer) =>
  `sha256-${createHash('sha256').update(bytes).digest('base64')}`

describe("the seed module's callers: absolute temp paths, HOME redirected, cwd elsewhere", () => {
  const saved = { home: process.env.HOME, dir: process.env.PATCH_BACKUP_DIR, cwd: process.cwd() }
  let temp: string
  let elsewhere: string
  let file: string
  beforeEach(async () => {
    temp = await realpath(await mkdtemp(path.join(os.tmpdir(), 'patch-backup-test-')))
    elsewhere = await realpath(await mkdtemp(path.join(os.tmpdir(), 'pb-elsewhere-')))
    delete process.env.PATCH_BACKUP_DIR
    process.env.HOME = temp
    process.chdir(elsewhere)
    file = path.join(temp, 'test-file.js')
    await writeFile(file, 'original content')
  })
  afterEach(async () => {
    process.chdir(saved.cwd)
    if (saved.home === undefined) delete process.env.HOME
    else process.env.HOME = saved.home
    if (saved.dir !== undefined) process.env.PATCH_BACKUP_DIR = saved.dir
    await rm(temp, { recursive: true, force: true })
    await rm(elsewhere, { recursive: true, force: true })
  })

  it('backs up and restores an absolute path outside process.cwd(), keyed as given', async () => {
    const info = await api.createBackup('seed-1', file)
    expect(info.originalPath).toBe(file)
    expect(info.integrity).toBe(sha256('original content'))
    await writeFile(file, 'patched content')
    await expect(api.restoreBackup('seed-1', file)).resolves.toBe(true)
    await expect(readFile(file, 'utf8')).resolves.toBe('original content')
    const manifest = JSON.parse(
      await readFile(path.join(temp, '.socket/_patches/manifests/seed-1.json'), 'utf8'),
    )
    expect(Object.keys(manifest.files)).toEqual([file])
    expect(manifest).not.toHaveProperty('projectRoot')
    await expect(api.getBackupInfo('seed-1', file)).resolves.toMatchObject({ originalPath: file })
    await expect(api.hasBackup('seed-1', file)).resolves.toBe(true)
    await expect(api.listBackups('seed-1')).resolves.toEqual([file])
    // The store key hashes the path string as given, as the seed's did.
    const digest = createHash('sha256').update(file).digest('hex').slice(0, 16)
    const index = await readdir(path.join(temp, '.socket/_cacache/index-v5'), { recursive: true })
    const entries = await Promise.all(
      index
        .map((p) => path.join(temp, '.socket/_cacache/index-v5', p))
        .map((p) => readFile(p, 'utf8').catch(() => '')),
    )
    expect(entries.join('\n')).toContain(`socket:patch:backup:seed-1:${digest}`)
  })

  it('normalizes the path it keys: ./a/../b.js and backslashes', async () => {
    await writeFile(path.join(temp, 'b.js'), 'b')
    const info = await api.createBackup('seed-norm', `${temp}/./a/../b.js`)
    expect(info.originalPath).toBe(path.join(temp, 'b.js'))
    await expect(api.hasBackup('seed-norm', path.join(temp, 'b.js'))).resolves.toBe(true)
  })

  it('follows HOME changed between calls', async () => {
    await api.createBackup('in-first-home', file)
    const second = await realpath(await mkdtemp(path.join(os.tmpdir(), 'pb-home-2-')))
    try {
      process.env.HOME = second
      await expect(api.listAllPatches()).resolves.toEqual([])
      await api.createBackup('in-second-home', file)
      await expect(api.listAllPatches()).resolves.toEqual(['in-second-home'])
      process.env.HOME = temp
      await expect(api.listAllPatches()).resolves.toEqual(['in-first-home'])
    } finally {
      await rm(second, { recursive: true, force: true })
    }
  })

  it('lists each file in failed and writes nothing when the cacache dir was deleted', async () => {
    const other = path.join(temp, 'lib', 'other.js')
    await mkdir(path.dirname(other), { recursive: true })
    await writeFile(other, 'other original')
    await api.createBackups('gone', [file, other])
    await writeFile(file, 'patched')
    await writeFile(other, 'patched other')
    await rm(path.join(temp, '.socket', '_cacache'), { recursive: true, force: true })
    const result = await api.restoreAllBackups('gone')
    expect(result.restored).toEqual([])
    expect(result.failed.sort()).toEqual([other, file].sort())
    await expect(readFile(file, 'utf8')).resolves.toBe('patched')
    await expect(readFile(other, 'utf8')).resolves.toBe('patched other')
    expect((await readdir(temp)).sort()).toEqual(['.socket', 'lib', 'test-file.js'])
  })

  it('reads a hand-written manifest with files: {}', async () => {
    const dir = path.join(temp, '.socket', '_patches', 'manifests')
    await mkdir(dir, { recursive: true })
    await writeFile(
      path.join(dir, 'hand.json'),
      JSON.stringify({ uuid: 'hand', patchedAt: new Date().toISOString(), files: {} }),
    )
    await expect(api.listBackups('hand')).resolves.toEqual([])
    await expect(api.hasBackup('hand', file)).resolves.toBe(false)
    await expect(api.restoreAllBackups('hand')).resolves.toEqual({
      restored: [],
      failed: [],
      errors: [],
    })
    await expect(api.listAllPatches()).resolves.toEqual(['hand'])
  })

  it('cleans up once (true), then says there was nothing (false)', async () => {
    await api.createBackup('twice', file)
    await expect(api.cleanupBackups('twice')).resolves.toBe(true)
    await expect(api.cleanupBackups('twice')).resolves.toBe(false)
    await expect(api.getPatchMetadata('twice')).resolves.toBeUndefined()
  })

  it('records one entry for 10 concurrent createBackup calls on one uuid', async () => {
    const files = Array.from({ length: 10 }, (_, i) => path.join(temp, `f${i}.js`))
    await Promise.all(files.map((f, i) => writeFile(f, `file ${i}`)))
    const infos = await Promise.all(files.map((f) => api.createBackup('ten', f)))
    expect(infos.map((i) => i.originalPath)).toEqual(files)
    await expect(api.listBackups('ten')).resolves.toEqual([...files].sort())
    const same = await Promise.all(Array.from({ length: 10 }, () => api.createBackup('one', file)))
    expect(new Set(same.map((i) => i.integrity)).size).toBe(1)
    await expect(api.listBackups('one')).resolves.toEqual([file])
  })

  it('leaves the integrity unchanged after a restore', async () => {
    const before = await api.createBackup('same', file)
    await writeFile(file, 'patched content')
    await api.restoreBackup('same', file)
    await expect(api.getBackupInfo('same', file)).resolves.toEqual(before)
    expect(sha256(await readFile(file))).toBe(before.integrity)
  })

  it('resolves a relative path against process.cwd() at the call', async () => {
    await writeFile(path.join(elsewhere, 'here.js'), 'here')
    const info = await api.createBackup('relative', 'here.js')
    expect(info.originalPath).toBe('here.js')
    await writeFile(path.join(elsewhere, 'here.js'), 'patched')
    await expect(api.restoreBackup('relative', 'here.js')).resolves.toBe(true)
    await expect(readFile(path.join(elsewhere, 'here.js'), 'utf8')).resolves.toBe('here')
  })
})
