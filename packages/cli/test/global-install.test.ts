import { execFile } from 'node:child_process'
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import { createRequire } from 'node:module'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import pkg from '../package.json' with { type: 'json' }
import { cleanEnv, json, run, sandbox } from './helpers.js'

const exec = promisify(execFile)
const WORKSPACE = fileURLToPath(new URL('../../..', import.meta.url))
const PACKAGES = ['core', 'store-cacache', 'manifest', 'cli']

let work: string
let prefix: string
let bin: string

// As users get it: packed tarballs, installed globally by npm into a prefix of our own.
beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'pb-global-'))
  const tarballs = path.join(work, 'tarballs')
  prefix = path.join(work, 'prefix')
  // `pnpm pack` turns each `workspace:^` into the real version range, as a publish would.
  await exec(
    'pnpm',
    ['-r', '--filter-prod', '@patch-backup/cli...', 'pack', '--pack-destination', tarballs],
    { cwd: WORKSPACE },
  )
  const packed = await readdir(tarballs)
  const files = PACKAGES.map((name) => {
    const file = packed.find((f) => f.startsWith(`patch-backup-${name}-`))
    if (!file) throw new Error(`pnpm pack made no tarball for @patch-backup/${name}: ${packed}`)
    return path.join(tarballs, file)
  })
  // One npm command for all four: each @patch-backup dependency range is then met by its
  // sibling at the top of the global tree, so npm places none from the registry (they are
  // not published). npm still asks the registry about those names while it looks ahead; a
  // 404 there is harmless, and the assertions below check where every one came from.
  await exec(
    'npm',
    ['install', '--global', '--prefix', prefix, '--no-fund', '--no-audit', ...files],
    { cwd: work, env: cleanEnv({ npm_config_update_notifier: 'false' }) },
  )
  bin = path.join(prefix, 'bin', 'patch-backup')
}, 300_000)

afterAll(() => rm(work, { recursive: true, force: true }))

const globalRoot = () => path.join(prefix, 'lib', 'node_modules')

describe.skipIf(process.platform === 'win32')('installed globally from the packed tarballs', () => {
  it('resolves every @patch-backup package to the tarballs, none nested or fetched', async () => {
    const root = globalRoot()
    expect((await readdir(path.join(root, '@patch-backup'))).sort()).toEqual([...PACKAGES].sort())
    const requireFromCli = createRequire(path.join(root, '@patch-backup', 'cli', 'package.json'))
    for (const name of ['core', 'store-cacache', 'manifest']) {
      const resolved = requireFromCli.resolve(`@patch-backup/${name}/package.json`)
      expect(resolved).toBe(path.join(root, '@patch-backup', name, 'package.json'))
      // Byte for byte the workspace's build, not some registry package of the same name.
      const installed = await readFile(path.join(root, '@patch-backup', name, 'dist', 'index.js'))
      const built = await readFile(path.join(WORKSPACE, 'packages', name, 'dist', 'index.js'))
      expect(installed.equals(built), name).toBe(true)
    }
    for (const name of PACKAGES) {
      const nested = await readdir(path.join(root, '@patch-backup', name, 'node_modules')).catch(
        () => [],
      )
      expect(nested, name).not.toContain('@patch-backup')
    }
  })

  it('leaves out the S3 store and the AWS SDK (an optional peer), and says how to add them', async () => {
    const root = globalRoot()
    expect(await readdir(root)).not.toContain('@aws-sdk')
    const nested = await readdir(path.join(root, '@patch-backup', 'cli', 'node_modules')).catch(
      () => [],
    )
    expect(nested).not.toContain('@aws-sdk')
    // The manifests live in the bucket: list needs store-s3 as much as verify does.
    const list = await run(
      ['--dir', path.join(work, 'root'), '--store', 's3://b/p', 'list', '--json'],
      { cwd: work, executable: bin },
    )
    expect(list.code, list.stderr).toBe(1)
    expect(json(list)).toMatchObject({ error: { code: 'STORE_UNAVAILABLE' } })
    const r = await run(
      ['--dir', path.join(work, 'root'), '--store', 's3://b/p', 'verify', '--json'],
      {
        cwd: work,
        executable: bin,
      },
    )
    expect(r.code).toBe(1)
    expect(json(r)).toEqual({
      error: {
        code: 'STORE_UNAVAILABLE',
        message: expect.stringContaining("'npm install --global @patch-backup/store-s3'"),
      },
    })
  })

  it('runs a full session from the prefix', async () => {
    const box = await sandbox({ 'node_modules/lib/index.js': 'export const x = 1\n' })
    try {
      const cli = (args: string[]) =>
        run(['--dir', box.store, ...args], { cwd: box.project, executable: bin })
      expect((await cli(['--version'])).stdout).toBe(`${pkg.version}\n`)
      expect((await cli(['backup', 's-1', 'node_modules/lib/index.js'])).code).toBe(0)
      await box.write('node_modules/lib/index.js', 'export const x = 2\n')
      const status = await cli(['status', 's-1', '--json'])
      expect(json<{ counts: object }>(status).counts).toEqual({
        original: 0,
        patched: 0,
        drifted: 0,
        modified: 1,
        'mode-changed': 0,
        missing: 0,
        directory: 0,
        symlink: 0,
        'not-a-file': 0,
        unreadable: 0,
      })
      expect((await cli(['diff', 's-1', 'node_modules/lib/index.js'])).stdout).toContain(
        '+export const x = 2',
      )
      expect((await cli(['restore', 's-1'])).code).toBe(0)
      expect((await cli(['verify'])).code).toBe(0)
      expect((await cli(['cleanup', 's-1'])).code).toBe(0)
      expect((await cli(['restore', 's-1', '--bogus'])).code).toBe(2)
    } finally {
      await box.remove()
    }
  })
})
