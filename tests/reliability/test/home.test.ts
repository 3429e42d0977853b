import { spawn } from 'node:child_process'
import { chmod, readdir, rm } from 'node:fs/promises'
import { createRequire } from 'node:module'
import path from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import { canSwitchUser, runChild } from './support/child.js'
import { assertBuilt, realTemp } from './support/workspace.js'

beforeAll(() => assertBuilt())

/** A uid with no passwd entry: os.homedir() has nothing to fall back on. */
const NO_PASSWD_UID = 54_321

interface Report {
  open: unknown
  createBackup: unknown
  listAllPatches: unknown
  syncThrows: string[]
}

const cases: { name: string; env: NodeJS.ProcessEnv; uid?: number; code: string }[] = [
  { name: 'HOME unset, and no passwd entry', env: {}, uid: NO_PASSWD_UID, code: 'NO_HOME' },
  { name: 'HOME empty', env: { HOME: '' }, code: 'NO_HOME' },
  { name: 'HOME relative', env: { HOME: 'relative/home' }, code: 'NO_HOME' },
  { name: 'HOME a literal ~', env: { HOME: '~' }, code: 'NO_HOME' },
  {
    name: 'PATCH_BACKUP_DIR empty, HOME empty',
    env: { HOME: '', PATCH_BACKUP_DIR: '' },
    code: 'NO_HOME',
  },
  {
    name: 'PATCH_BACKUP_DIR=~ and no home',
    env: { HOME: '', PATCH_BACKUP_DIR: '~' },
    code: 'NO_HOME',
  },
  {
    name: 'PATCH_BACKUP_DIR=~/x and no home',
    env: { HOME: '', PATCH_BACKUP_DIR: '~/x' },
    code: 'NO_HOME',
  },
  {
    name: 'PATCH_BACKUP_DIR=~alice/x (never expanded)',
    env: { HOME: '/nonexistent', PATCH_BACKUP_DIR: '~alice/x' },
    code: 'INVALID_PATH',
  },
]

describe('no usable home', () => {
  for (const { name, env, uid, code } of cases) {
    it.skipIf(uid !== undefined && !canSwitchUser())(
      `${name}: ${code} from every entry point, and no ~ directory anywhere`,
      async () => {
        const cwd = await realTemp('home')
        try {
          await chmod(cwd, 0o777)
          const run = await runChild<Report>('no-home.mjs', [], {
            env,
            replaceEnv: true,
            cwd,
            uid,
            gid: uid,
          })
          expect(run.code, run.output).toBe(0)
          const expected = expect.objectContaining({ code })
          expect(run.result).toEqual({
            open: expected,
            createBackup: expected,
            listAllPatches: expected,
            syncThrows: [],
          })
          await expect(readdir(cwd)).resolves.toEqual(['file.js'])
        } finally {
          await rm(cwd, { recursive: true, force: true })
        }
      },
    )
  }

  it('the CLI: exit 1 with a NO_HOME JSON error, and no ~ directory', async () => {
    const cwd = await realTemp('home-cli')
    try {
      const bin = path.join(
        path.dirname(createRequire(import.meta.url).resolve('@patch-backup/cli/package.json')),
        'bin',
        'patch-backup.js',
      )
      const { code, stdout } = await new Promise<{ code: number | null; stdout: string }>(
        (resolve) => {
          const child = spawn(process.execPath, [bin, 'list', '--json'], {
            cwd,
            env: { HOME: '' },
            stdio: ['ignore', 'pipe', 'pipe'],
          })
          let out = ''
          child.stdout.on('data', (d) => {
            out += d
          })
          child.on('close', (c) => resolve({ code: c, stdout: out }))
        },
      )
      expect(code).toBe(1)
      expect(JSON.parse(stdout)).toMatchObject({ error: { code: 'NO_HOME' } })
      await expect(readdir(cwd)).resolves.toEqual([])
    } finally {
      await rm(cwd, { recursive: true, force: true })
    }
  })
})
