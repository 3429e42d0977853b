import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { cleanEnv, run } from './helpers.js'

const tracer = fileURLToPath(new URL('./fixtures/trace-loads.mjs', import.meta.url))
let work: string
beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'pb-startup-'))
})
afterAll(() => rm(work, { recursive: true, force: true }))

async function loadedBy(args: string[], env: NodeJS.ProcessEnv = {}, code = 0): Promise<string[]> {
  const out = path.join(work, `${args.join('_').replace(/\W/g, '')}.json`)
  const r = await run(args, {
    cwd: work,
    nodeArgs: ['--import', tracer],
    env: cleanEnv({ ...env, TRACE_LOADS_TO: out }),
  })
  expect(r.code, r.stderr).toBe(code)
  return JSON.parse(await readFile(out, 'utf8')) as string[]
}

const heavy = (files: string[]) =>
  files.filter((f) => /[\\/](cacache|proper-lockfile|ssri)[\\/]/.test(f))
// The AWS SDK is CommonJS too (its `main`), so the tracer sees it when `--store` loads it.
const awsSdk = (files: string[]) => files.filter((f) => /[\\/]@aws-sdk[\\/]/.test(f))

describe('start-up', () => {
  it('--version and --help load neither cacache nor proper-lockfile', async () => {
    expect(heavy(await loadedBy(['--version']))).toEqual([])
    // Through the parser too (the bare --version answers before it loads).
    expect(heavy(await loadedBy(['--json', '--version']))).toEqual([])
    expect(heavy(await loadedBy(['restore', '--help']))).toEqual([])
  })

  it('bare --version does not even load the parser', async () => {
    expect((await loadedBy(['--version'])).filter((f) => f.includes('commander'))).toEqual([])
    expect((await loadedBy(['--help'])).some((f) => f.includes('commander'))).toBe(true)
  })

  it('a typical command line is read without loading the parser (commander)', async () => {
    const dir = path.join(work, 'store')
    await writeFile(path.join(work, 'c.js'), 'c\n')
    const parser = (files: string[]) => files.filter((f) => f.includes('commander'))
    const cwd = ['--dir', dir, '--cwd', work]
    expect(parser(await loadedBy([...cwd, 'backup', 'p-3', 'c.js']))).toEqual([])
    expect(parser(await loadedBy(['--dir', dir, 'list', '--json']))).toEqual([])
    expect(parser(await loadedBy([...cwd, 'status', 'p-3', '--no-color']))).toEqual([])
    // A line it does not take (here a mistake) still gets commander's message, and exit 2.
    expect(parser(await loadedBy(['--dir', dir, 'status'], {}, 2))).not.toEqual([])
  })

  it('list, info and status (manifests and files on disk only) load neither', async () => {
    const dir = path.join(work, 'store')
    await writeFile(path.join(work, 'a.js'), 'a\n')
    await loadedBy(['--dir', dir, '--cwd', work, 'backup', 'p-1', 'a.js'])
    expect(heavy(await loadedBy(['--dir', dir, 'list']))).toEqual([])
    expect(heavy(await loadedBy(['--dir', dir, 'info', 'p-1']))).toEqual([])
    expect(heavy(await loadedBy(['--dir', dir, '--cwd', work, 'status', 'p-1']))).toEqual([])
  })

  it('a backup of new files does not load cacache: it writes the index line itself', async () => {
    await writeFile(path.join(work, 'd.js'), 'd\n')
    const cwd = ['--dir', path.join(work, 'store'), '--cwd', work]
    const loaded = heavy(await loadedBy([...cwd, 'backup', 'p-4', 'd.js']))
    expect(loaded.filter((f) => f.includes(`${path.sep}cacache${path.sep}`))).toEqual([])
  })

  it('a backup of new files loads no ssri: content paths of plain integrities are read in-house', async () => {
    await writeFile(path.join(work, 'e.js'), 'e\n')
    await writeFile(path.join(work, 'f.js'), 'f\n')
    const cwd = ['--dir', path.join(work, 'store'), '--cwd', work]
    // A new patch, then a second backup into it.
    for (const file of ['e.js', 'f.js']) {
      const loaded = await loadedBy([...cwd, 'backup', 'p-5', file])
      expect(loaded.filter((f) => /[\\/](ssri|minipass)[\\/]/.test(f))).toEqual([])
    }
  })

  it('commands that lock and look up keys do load them (so the checks above can fail)', async () => {
    await writeFile(path.join(work, 'b.js'), 'b\n')
    const store = path.join(work, 'store')
    const backedUp = heavy(await loadedBy(['--dir', store, '--cwd', work, 'backup', 'p-2', 'b.js']))
    expect(backedUp.some((f) => f.includes('proper-lockfile'))).toBe(true)
    // A cleanup looks its keys up in cacache's index: cacache is loaded at that first lookup.
    const cleaned = await loadedBy(['--dir', store, 'cleanup', 'p-2'])
    expect(heavy(cleaned).some((f) => f.includes(`${path.sep}cacache${path.sep}`))).toBe(true)
    // With cacache come ssri and minipass.
    expect(cleaned.some((f) => /[\\/]ssri[\\/]/.test(f))).toBe(true)
  })

  it('only --store loads the AWS SDK: never --version, --help, a run on the local store or list', async () => {
    expect(awsSdk(await loadedBy(['--version']))).toEqual([])
    expect(awsSdk(await loadedBy(['--json', '--version']))).toEqual([])
    expect(awsSdk(await loadedBy(['--help']))).toEqual([])
    expect(awsSdk(await loadedBy(['--dir', path.join(work, 'store'), 'list']))).toEqual([])
    // `list` reads the manifests in the bucket: with no server there, it fails (exit 1), after
    // loading the SDK.
    const remote = await loadedBy(
      ['--dir', path.join(work, 'store'), '--store', 's3://b/p', 'list'],
      { AWS_ENDPOINT_URL: 'http://127.0.0.1:9', AWS_MAX_ATTEMPTS: '1' },
      1,
    )
    expect(awsSdk(remote).length).toBeGreaterThan(0)
  })
})
