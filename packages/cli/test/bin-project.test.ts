// A patch knows its project: run from a subdirectory, from elsewhere, or with either spelling of a
// file, the CLI finds the same files; a --cwd that is no directory is a usage error.
import { mkdir, mkdtemp, readdir, readFile, realpath, rm, stat, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { json, type Sandbox, sandbox } from './helpers.js'

const A = 'node_modules/lodash/map.js'
const B = 'node_modules/lodash/index.js'
const C = 'node_modules/minimist/index.js'

let box: Sandbox
let project: string
beforeEach(async () => {
  box = await sandbox({
    'package.json': '{"name":"app"}\n',
    [A]: 'map original\n',
    [B]: 'index original\n',
    'node_modules/lodash/package.json': '{"name":"lodash"}\n',
    [C]: 'minimist original\n',
  })
  project = await realpath(box.project)
})
afterEach(() => box.remove())

const read = (file: string) => readFile(path.join(project, file), 'utf8')
const patchAll = async () => {
  for (const f of [A, B, C]) await writeFile(path.join(project, f), 'patched\n')
}

describe('the project of a run', () => {
  it('restores to the project from node_modules/lodash, and status there sees the files', async () => {
    expect((await box.cli(['backup', 'fix-1', A, B, C])).code).toBe(0)
    await patchAll()
    const lodash = path.join(project, 'node_modules/lodash')
    const status = await box.cli(['status', 'fix-1', '--json'], { cwd: lodash })
    expect(status.code).toBe(0)
    const states = json<{ files: { path: string; state: string }[] }>(status).files
    expect(states.map((f) => f.state)).not.toContain('missing')
    const r = await box.cli(['restore', 'fix-1', '--json'], { cwd: lodash })
    expect(r.code).toBe(0)
    expect(json(r).restored).toEqual([B, A, C])
    for (const f of [A, B, C]) await expect(read(f)).resolves.toContain('original')
    // Nothing was created under the directory the command ran in.
    expect((await readdir(lodash)).sort()).toEqual(['index.js', 'map.js', 'package.json'])
    const undo = await box.cli(['undo', 'fix-1', '--json'], { cwd: lodash })
    expect(undo.code).toBe(0)
  })

  it('resolves file arguments against the directory the command runs in', async () => {
    const lodash = path.join(project, 'node_modules/lodash')
    const r = await box.cli(['backup', 'fix-2', 'map.js', '--json'], { cwd: lodash })
    expect(r.code).toBe(0)
    expect(json(r).backedUp).toEqual([A])
    await writeFile(path.join(project, A), 'patched\n')
    expect((await box.cli(['restore', 'fix-2', 'map.js'], { cwd: lodash })).code).toBe(0)
    await expect(read(A)).resolves.toBe('map original\n')
  })

  it('records the project root and restores there from a directory outside it', async () => {
    expect((await box.cli(['backup', 'fix-3', A])).code).toBe(0)
    const manifest = JSON.parse(
      await readFile(path.join(box.store, '_patches/manifests/fix-3.json'), 'utf8'),
    )
    expect(manifest.projectRoot).toBe(project)
    expect(Object.keys(manifest.files)).toEqual([A])
    await writeFile(path.join(project, A), 'patched\n')
    const away = await mkdtemp(path.join(os.tmpdir(), 'pb-away-'))
    try {
      const r = await box.cli(['restore', 'fix-3'], { cwd: away })
      expect(r.code).toBe(0)
      await expect(read(A)).resolves.toBe('map original\n')
      expect(await readdir(away)).toEqual([])
    } finally {
      await rm(away, { recursive: true, force: true })
    }
  })

  it('makes one key of both spellings of one file', async () => {
    expect((await box.cli(['backup', 't6', path.join(project, A)])).code).toBe(0)
    await writeFile(path.join(project, A), 'patched\n')
    const second = await box.cli(['backup', 't6', A, '--json'])
    expect(second.code).toBe(0)
    const list = await box.cli(['list', 't6', '--json'])
    expect(JSON.stringify(json(list))).not.toContain(project)
    expect((await box.cli(['backup', 't6', A, '--json'])).code).toBe(0)
    const manifest = JSON.parse(
      await readFile(path.join(box.store, '_patches/manifests/t6.json'), 'utf8'),
    )
    expect(Object.keys(manifest.files)).toEqual([A])
    const status = json<{ files: { path: string; state: string }[] }>(
      await box.cli(['status', 't6', '--json']),
    )
    expect(status.files).toEqual([expect.objectContaining({ path: A, state: 'modified' })])
    const diff = await box.cli(['diff', 't6', path.join(project, A)])
    expect(diff.code).toBe(0)
    expect(diff.stdout).toContain('-map original')
    expect((await box.cli(['restore', 't6', path.join(project, A)])).code).toBe(0)
    await expect(read(A)).resolves.toBe('map original\n')
  })

  it.each([
    ['does not exist', (work: string) => path.join(work, 'does-not-exist')],
    ['is a file', (work: string) => path.join(work, 'project', A)],
  ])('refuses a --cwd that %s: exit 2, nothing run', async (_why, target) => {
    await box.cli(['backup', 'p-1', A])
    const cwd = target(path.dirname(project))
    for (const args of [
      ['status', 'p-1'],
      ['restore', 'p-1', '--dry-run'],
      ['backup', 'p-2', 'x.js'],
    ]) {
      const r = await box.cli(['--cwd', cwd, ...args])
      expect(r.code, args.join(' ')).toBe(2)
      expect(r.stderr).toContain('--cwd')
    }
    await expect(stat(path.join(box.store, '_patches/manifests/p-2.json'))).rejects.toThrow()
  })

  it('finds the project above a subdirectory that is not in node_modules', async () => {
    await mkdir(path.join(project, 'src/deep'), { recursive: true })
    await writeFile(path.join(project, 'src/deep/a.js'), 'a original\n')
    const r = await box.cli(['backup', 'sub', 'a.js', '--json'], {
      cwd: path.join(project, 'src/deep'),
    })
    expect(r.code).toBe(0)
    expect(json(r).backedUp).toEqual(['src/deep/a.js'])
  })
})

describe('absolute keys outside the project (a library caller or the seed module wrote them)', () => {
  let outside: string
  let outFile: string
  beforeEach(async () => {
    outside = await realpath(await mkdtemp(path.join(os.tmpdir(), 'pb-outside-')))
    outFile = path.join(outside, 'global.js')
    await writeFile(outFile, 'global original\n')
    const { openPatchBackups } = await import(new URL('../dist/index.js', import.meta.url).href)
    const library = openPatchBackups({ dir: box.store })
    await library.createBackups('lib-1', [outFile, path.join(project, A)])
    await writeFile(outFile, 'global patched\n')
    await writeFile(path.join(project, A), 'patched\n')
  })
  afterEach(() => rm(outside, { recursive: true, force: true }))

  it('list, info, status and verify work on them', async () => {
    const list = await box.cli(['list', 'lib-1', '--json'])
    expect(list.code).toBe(0)
    expect(JSON.stringify(json(list))).toContain(outFile)
    expect((await box.cli(['info', 'lib-1', outFile])).code).toBe(0)
    const status = await box.cli(['status', 'lib-1', '--json'])
    expect(status.code).toBe(0)
    const files = json<{ files: { path: string; state: string }[] }>(status).files
    expect(files).toContainEqual(expect.objectContaining({ path: outFile, state: 'modified' }))
    expect(files).toContainEqual(
      expect.objectContaining({ path: path.join(project, A), state: 'modified' }),
    )
    expect((await box.cli(['verify', 'lib-1'])).code).toBe(0)
  })

  it('restore refuses them with INVALID_PATH naming --allow-outside, and restores them with it', async () => {
    const refused = await box.cli(['restore', 'lib-1', '--json'])
    expect(refused.code).toBe(1)
    const body = json<{ errors: { path: string; code: string; message: string }[] }>(refused)
    const error = body.errors.find((e) => e.path === outFile)
    expect(error?.code).toBe('INVALID_PATH')
    expect(error?.message).toContain('--allow-outside')
    await expect(readFile(outFile, 'utf8')).resolves.toBe('global patched\n')
    await expect(read(A)).resolves.toBe('patched\n')

    const allowed = await box.cli(['--allow-outside', 'restore', 'lib-1', '--json'])
    expect(allowed.code).toBe(0)
    await expect(readFile(outFile, 'utf8')).resolves.toBe('global original\n')
    await expect(read(A)).resolves.toBe('map original\n')
    expect((await box.cli(['--allow-outside', 'undo', 'lib-1'])).code).toBe(0)
    await expect(readFile(outFile, 'utf8')).resolves.toBe('global patched\n')
  })

  it('backup refuses a path outside the project without --allow-outside', async () => {
    const r = await box.cli(['backup', 'out-1', outFile, '--json'])
    expect(r.code).toBe(1)
    expect(json<{ errors: { code: string; message: string }[] }>(r).errors[0]).toMatchObject({
      code: 'INVALID_PATH',
      message: expect.stringContaining('--allow-outside'),
    })
    const ok = await box.cli(['--allow-outside', 'backup', 'out-1', outFile, '--json'])
    expect(ok.code).toBe(0)
    expect(json(ok).backedUp).toEqual([outFile])
  })
})
