import { constants } from 'node:fs'
import {
  access,
  chmod,
  lstat,
  mkdir,
  readdir,
  readFile,
  readlink,
  rename,
  rm,
  stat,
  symlink,
  writeFile,
} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { beforeAll, describe, expect, it } from 'vitest'
import { spawnChild } from './support/child.js'
import {
  assertBuilt,
  createWorkspace,
  fromEnv,
  openStack,
  type Workspace,
} from './support/workspace.js'

beforeAll(() => assertBuilt())

const KILLS = fromEnv('PB_LEFTOVER_KILLS', 4)

async function put(ws: Workspace, file: string, text: string): Promise<void> {
  await mkdir(path.dirname(path.join(ws.project, file)), { recursive: true })
  await writeFile(path.join(ws.project, file), text)
}

const exists = (file: string) =>
  access(file, constants.F_OK).then(
    () => true,
    () => false,
  )

/** Replaces `<project>/lib` with a symlink to `<outside>/lib`, which holds `x.js` of its own. */
async function libLeadsOutside(ws: Workspace): Promise<string> {
  const outsideLib = path.join(ws.outside, 'lib')
  await mkdir(outsideLib, { recursive: true })
  await writeFile(path.join(outsideLib, 'x.js'), 'outside, must survive')
  await rename(path.join(ws.project, 'lib'), path.join(ws.base, 'lib-moved'))
  await symlink(outsideLib, path.join(ws.project, 'lib'))
  return path.join(outsideLib, 'x.js')
}

describe('undo and recover act only inside the project', () => {
  it('undo of a restore that created a file does not delete through a directory now a symlink', async () => {
    const ws = await createWorkspace('undo-outside')
    try {
      const { backups } = openStack(ws)
      await put(ws, 'lib/x.js', 'original')
      await backups.createBackup('p', 'lib/x.js')
      await rm(path.join(ws.project, 'lib/x.js'))
      // The atomic restore recreates the missing x.js: what undo puts back is "no file".
      const restored = await backups.restoreAllBackups('p', { atomic: true })
      expect(restored.failed).toEqual([])
      expect((await backups.getPatchMetadata('p'))?.lastRestore).toMatchObject({
        files: { 'lib/x.js': null },
      })
      const outsideFile = await libLeadsOutside(ws)
      const undone = await backups.undoRestore('p')
      expect(undone.errors.map((e) => e.code)).toContain('INVALID_PATH')
      await expect(readFile(outsideFile, 'utf8')).resolves.toBe('outside, must survive')
    } finally {
      await ws.dispose()
    }
  })

  for (const phase of ['committing', 'rolling-back'] as const) {
    it(`recover of a ${phase} journal naming a path through such a symlink touches nothing`, async () => {
      const ws = await createWorkspace('recover-outside')
      try {
        const { backups, manifests } = openStack(ws)
        await put(ws, 'lib/x.js', 'original')
        await backups.createBackup('p', 'lib/x.js')
        const outsideFile = await libLeadsOutside(ws)
        const outsideTemp = path.join(ws.outside, 'lib', '.pb-feed-0.tmp')
        await writeFile(outsideTemp, 'outside temp, must survive')
        await manifests.update('p', (m) =>
          m
            ? {
                ...m,
                restoreJournal: {
                  id: 'feed',
                  phase,
                  startedAt: new Date().toISOString(),
                  owner: { pid: 999_999_999, host: os.hostname() },
                  files: { 'lib/x.js': { temp: 'lib/.pb-feed-0.tmp', previous: null } },
                },
              }
            : m,
        )
        await expect(backups.recover('p')).rejects.toMatchObject({ code: 'INVALID_PATH' })
        await expect(readFile(outsideFile, 'utf8')).resolves.toBe('outside, must survive')
        await expect(readFile(outsideTemp, 'utf8')).resolves.toBe('outside temp, must survive')
      } finally {
        await ws.dispose()
      }
    })
  }

  it('recover refuses a journal whose temp is not a restore temp beside its target', async () => {
    const ws = await createWorkspace('recover-temp')
    try {
      const { backups, manifests } = openStack(ws)
      await put(ws, 'lib/x.js', 'original')
      await put(ws, 'package.json', '{"name":"mine"}')
      await backups.createBackup('p', 'lib/x.js')
      await manifests.update('p', (m) =>
        m
          ? {
              ...m,
              restoreJournal: {
                id: 'feed',
                phase: 'committing',
                startedAt: new Date().toISOString(),
                owner: { pid: 999_999_999, host: os.hostname() },
                files: { 'lib/x.js': { temp: 'package.json', previous: null } },
              },
            }
          : m,
      )
      await expect(backups.recover('p')).rejects.toMatchObject({ code: 'INVALID_PATH' })
      await expect(readFile(path.join(ws.project, 'package.json'), 'utf8')).resolves.toBe(
        '{"name":"mine"}',
      )
      await expect(readFile(path.join(ws.project, 'lib/x.js'), 'utf8')).resolves.toBe('original')
    } finally {
      await ws.dispose()
    }
  })

  it('one entry that resolves outside the project blocks no restore of the others', async () => {
    const ws = await createWorkspace('bad-key')
    try {
      const { backups, manifests } = openStack(ws)
      await put(ws, 'lib/good.js', 'original')
      const good = await backups.createBackup('p', 'lib/good.js')
      await manifests.update('p', (m) =>
        m ? { ...m, files: { ...m.files, '../elsewhere/x.js': { ...good } } } : m,
      )
      await put(ws, 'lib/good.js', 'patched')
      await expect(backups.restoreBackup('p', 'lib/good.js')).resolves.toBe(true)
      await put(ws, 'lib/good.js', 'patched')
      const all = await backups.restoreAllBackups('p')
      expect(all.restored).toEqual(['lib/good.js'])
      expect(all.failed).toEqual(['../elsewhere/x.js'])
      await expect(readFile(path.join(ws.project, 'lib/good.js'), 'utf8')).resolves.toBe('original')
    } finally {
      await ws.dispose()
    }
  })

  it('a forced restore over a symlink to an outside file, then undo, copies no outside bytes in', async () => {
    const ws = await createWorkspace('snapshot-symlink')
    try {
      const { backups } = openStack(ws)
      await put(ws, 'lib/y.js', 'original')
      await backups.createBackup('p', 'lib/y.js')
      await put(ws, 'lib/y.js', 'patched')
      await backups.recordPatched('p')
      const secret = path.join(ws.outside, 'secret.txt')
      await writeFile(secret, 'outside secret')
      const target = path.join(ws.project, 'lib/y.js')
      await rm(target)
      await symlink(secret, target)
      await backups.restoreAllBackups('p', { force: true })
      await expect(readFile(target, 'utf8')).resolves.toBe('original')
      const undone = await backups.undoRestore('p')
      expect(undone.failed).toEqual([])
      // Undo puts the link back as a link; the secret's bytes never landed in the project.
      expect((await lstat(target)).isSymbolicLink()).toBe(true)
      await expect(readlink(target)).resolves.toBe(secret)
      await expect(readFile(secret, 'utf8')).resolves.toBe('outside secret')
    } finally {
      await ws.dispose()
    }
  })
})

describe('restores never create setuid, setgid or sticky files unless asked', () => {
  for (const mode of [0o4755, 0o2755, 0o6755, 0o1755]) {
    it(`a recorded mode ${mode.toString(8)} restores as ${(mode & 0o777).toString(8)}`, async () => {
      const ws = await createWorkspace('setuid')
      try {
        const { backups, manifests } = openStack(ws)
        await put(ws, 'bin/tool', '#!/bin/sh\necho hi\n')
        await backups.createBackup('p', 'bin/tool')
        await manifests.update('p', (m) => {
          if (!m) return m
          const entry = m.files['bin/tool']
          return { ...m, files: { 'bin/tool': { ...entry, mode } } } as typeof m
        })
        const target = path.join(ws.project, 'bin/tool')
        for (const atomic of [false, true]) {
          await writeFile(target, 'patched')
          await chmod(target, 0o644)
          await backups.restoreAllBackups('p', { atomic })
          expect(((await stat(target)).mode & 0o7777).toString(8)).toBe((mode & 0o777).toString(8))
        }
        // The recorded mode keeps the bits, for a caller that asks for them.
        expect((await backups.getBackupInfo('p', 'bin/tool'))?.mode).toBe(mode)
      } finally {
        await ws.dispose()
      }
    })
  }
})

describe('a restore killed at any moment leaves no temp file behind the next call', () => {
  for (const atomic of [false, true]) {
    it(`kill -9 during restoreAllBackups (atomic: ${atomic}), then the next restore`, async () => {
      const ws = await createWorkspace('leftovers')
      try {
        const { backups } = openStack(ws)
        const files = Array.from({ length: 60 }, (_, i) => `lib/d${i % 4}/f${i}.js`)
        for (const file of files) await put(ws, file, `original ${file} `.repeat(100))
        await backups.createBackups('p', files)
        for (const file of files) await put(ws, file, `patched ${file}`)
        await backups.recordPatched('p')
        for (let kill = 0; kill < KILLS; kill++) {
          const child = spawnChild('restore-all-loop.mjs', [
            ws.root,
            ws.project,
            'p',
            String(files.length),
            atomic ? '1' : '0',
          ])
          await child.waitFor((m) => typeof m.restoring === 'number' && m.restoring >= 1)
          await sleep(Math.random() * 40)
          await child.kill('SIGKILL')
        }
        const result = await backups.restoreAllBackups('p', { atomic, force: true })
        expect(result.failed).toEqual([])
        const strays: string[] = []
        for (let d = 0; d < 4; d++) {
          const dir = path.join(ws.project, 'lib', `d${d}`)
          strays.push(...(await readdir(dir)).filter((n) => n.endsWith('.tmp')))
        }
        const tmp = path.join(ws.cachePath, 'tmp')
        strays.push(...(await readdir(tmp).catch(() => [] as string[])))
        expect(strays).toEqual([])
        for (const file of files) {
          await expect(readFile(path.join(ws.project, file), 'utf8')).resolves.toBe(
            `original ${file} `.repeat(100),
          )
        }
        expect(await exists(path.join(ws.project, 'lib', 'd0'))).toBe(true)
      } finally {
        await ws.dispose()
      }
    })
  }
})
