import { mkdir } from 'node:fs/promises'
import path from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import pkg from '../package.json' with { type: 'json' }
import { cleanEnv, json, run, type Sandbox, sandbox } from './helpers.js'

const A = 'node_modules/a/index.js'
const COMMANDS = [
  'backup',
  'record',
  'restore',
  'undo',
  'recover',
  'list',
  'info',
  'cleanup',
  'verify',
  'gc',
  'status',
  'diff',
]
const ANSI = '\u001b['

let box: Sandbox
beforeEach(async () => {
  box = await sandbox({ [A]: 'alpha\n' })
})
afterEach(() => box.remove())

describe('--version and --help', () => {
  it('prints the version (exit 0)', async () => {
    for (const flag of ['--version', '-v']) {
      const r = await run([flag])
      expect(r).toEqual({ code: 0, stdout: `${pkg.version}\n`, stderr: '' })
    }
  })

  it('prints help for the program and for every command (exit 0)', async () => {
    const top = await run(['--help'])
    expect(top.code).toBe(0)
    for (const name of COMMANDS) expect(top.stdout).toContain(`  ${name}`)
    expect(top.stdout).toContain('Exit codes: 0 done, 1')
    for (const name of COMMANDS) {
      const r = await run([name, '--help'])
      expect(r.code, name).toBe(0)
      expect(r.stdout).toMatch(new RegExp(`^Usage: patch-backup ${name} `))
      expect(r.stdout).toContain('--json') // global options are listed too
    }
    const viaHelp = await run(['help', 'restore'])
    expect(viaHelp.code).toBe(0)
    expect(viaHelp.stdout).toContain('--dry-run')
  })
})

describe('usage errors exit 2 with a one-line hint and the usage', () => {
  it('unknown flag', async () => {
    const r = await box.cli(['restore', 'p-1', '--bogus'])
    expect(r.code).toBe(2)
    expect(r.stdout).toBe('')
    expect(r.stderr).toBe(
      "error: unknown option '--bogus'\n" +
        'Usage: patch-backup restore [options] <uuid> [files...]\n' +
        "Run 'patch-backup restore --help' for details.\n",
    )
  })

  it('unknown command', async () => {
    const r = await box.cli(['frobnicate'])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/^error: unknown command 'frobnicate'\nUsage: patch-backup /)
  })

  it('missing argument, too many arguments, no command', async () => {
    const missing = await box.cli(['backup', 'p-1'])
    expect(missing.code).toBe(2)
    expect(missing.stderr).toMatch(
      /^error: missing required argument 'files'\nUsage: patch-backup backup \[options\] <uuid> <files\.\.\.>\n/,
    )
    const excess = await box.cli(['status', 'p-1', 'extra'])
    expect(excess.code).toBe(2)
    expect(excess.stderr).toMatch(/^error: too many arguments/)
    const none = await box.cli([])
    expect(none.code).toBe(2)
  })

  it('is one JSON document on stdout under --json', async () => {
    const r = await box.cli(['list', '--json', '--nope'])
    expect(r.code).toBe(2)
    expect(json(r)).toEqual({
      error: { code: 'USAGE_ERROR', message: "unknown option '--nope'" },
    })
  })
})

describe('global flags', () => {
  it('--dir beats PATCH_BACKUP_DIR, which beats ~/.socket', async () => {
    const home = path.join(box.store, 'home')
    const fromEnv = path.join(box.store, 'env-root')
    await mkdir(home, { recursive: true })
    const env = cleanEnv({ HOME: home, PATCH_BACKUP_DIR: fromEnv })
    expect((await run(['backup', 'in-env', A], { cwd: box.project, env })).code).toBe(0)
    const flagged = await run(['--dir', box.store, 'list', '--json'], { cwd: box.project, env })
    expect(json(flagged)).toMatchObject({ patches: [] })
    const viaEnv = await run(['list', '--json'], { cwd: box.project, env })
    expect(json<{ patches: { uuid: string }[] }>(viaEnv).patches.map((p) => p.uuid)).toEqual([
      'in-env',
    ])
    const homeEnv = cleanEnv({ HOME: home })
    expect((await run(['backup', 'in-home', A], { cwd: box.project, env: homeEnv })).code).toBe(0)
    const viaHome = await run(['--dir', path.join(home, '.socket'), 'list', '--json'])
    expect(json<{ patches: { uuid: string }[] }>(viaHome).patches.map((p) => p.uuid)).toEqual([
      'in-home',
    ])
  })

  it('--cwd sets the project root, and flags go before or after the command', async () => {
    const elsewhere = path.dirname(box.project)
    const r = await run(['backup', '--cwd', box.project, 'p-1', A, '--dir', box.store], {
      cwd: elsewhere,
    })
    expect(r.code, r.stderr).toBe(0)
    const status = await run(['--dir', box.store, '--cwd', box.project, 'status', 'p-1'], {
      cwd: elsewhere,
    })
    expect(status.stdout).toContain(`original  ${A}`)
  })

  it('--quiet prints nothing on success', async () => {
    const r = await box.cli(['--quiet', 'backup', 'p-1', A])
    expect(r).toEqual({ code: 0, stdout: '', stderr: '' })
    expect((await box.cli(['status', 'p-1', '-q'])).stdout).toBe('')
  })

  it('colours only when asked: FORCE_COLOR, beaten by --no-color and NO_COLOR', async () => {
    await box.cli(['backup', 'p-1', A])
    expect((await box.cli(['status', 'p-1'])).stdout).not.toContain(ANSI)
    const forced = cleanEnv({ FORCE_COLOR: '1' })
    expect((await box.cli(['status', 'p-1'], { env: forced })).stdout).toContain(ANSI)
    expect((await box.cli(['status', 'p-1', '--no-color'], { env: forced })).stdout).not.toContain(
      ANSI,
    )
    const noColor = cleanEnv({ FORCE_COLOR: '1', NO_COLOR: '1' })
    expect((await box.cli(['status', 'p-1'], { env: noColor })).stdout).not.toContain(ANSI)
  })

  it('--json output is never coloured and is one document', async () => {
    await box.cli(['backup', 'p-1', A])
    const r = await box.cli(['status', 'p-1', '--json'], { env: cleanEnv({ FORCE_COLOR: '1' }) })
    expect(r.stdout).not.toContain(ANSI)
    expect(() => JSON.parse(r.stdout)).not.toThrow()
    expect(r.stderr).toBe('')
  })

  it('errors become exit 1 with "error: <message>" on stderr', async () => {
    const r = await box.cli(['--dir', '', 'list'])
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/^error: The backup root "" is not a usable path\.\n$/)
    const noHome = await run(['list', '--json'], { env: cleanEnv({ HOME: '' }) })
    expect(noHome.code).toBe(1)
    expect(json(noHome)).toMatchObject({ error: { code: 'NO_HOME' } })
  })
})
