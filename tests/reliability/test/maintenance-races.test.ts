import { mkdir, stat, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { beforeAll, describe, expect, it } from 'vitest'
import { type Child, spawnChild } from './support/child.js'
import {
  assertBuilt,
  createWorkspace,
  fromEnv,
  openStack,
  type Workspace,
} from './support/workspace.js'

beforeAll(() => assertBuilt())

/** `PB_RACE_SCALE=10` multiplies every race's size for a long run. */
const SCALE = fromEnv('PB_RACE_SCALE', 1)

interface Completed {
  uuid: string
  path: string
  integrity: string
}

function race(ws: Workspace, role: string, options: Record<string, unknown>): Child {
  return spawnChild('race.mjs', [role, ws.root, ws.project, JSON.stringify(options)])
}

function losses(children: Child[]): unknown[] {
  return children.flatMap((child) =>
    child
      .messages()
      .map((m) => (m as { lost?: unknown }).lost)
      .filter((lost) => lost !== undefined),
  )
}

function completed(children: Child[]): Completed[] {
  return children.flatMap((child) =>
    child
      .messages()
      .map((m) => (m as { ok?: Completed }).ok)
      .filter((ok): ok is Completed => ok !== undefined),
  )
}

/** Waits for the backing-up children, then stops the maintenance loops and waits for them too. */
async function runRace(ws: Workspace, writers: Child[], loops: Child[]): Promise<void> {
  const stop = path.join(ws.base, 'stop')
  for (const child of writers) {
    const { code } = await child.exited
    if (code !== 0) {
      await writeFile(stop, '')
      throw new Error(`a writer failed:\n${child.output()}`)
    }
  }
  await writeFile(stop, '')
  for (const child of loops) {
    const { code } = await child.exited
    expect(code, child.output()).toBe(0)
  }
}

/**
 * Nothing a manifest records is gone or corrupt, and each completed call is either still recorded
 * as it reported it, or (where `mayBeRemoved`) its patch or entry went on purpose.
 */
async function expectNothingLost(
  ws: Workspace,
  writers: Child[],
  mayBeRemoved: boolean,
): Promise<void> {
  const calls = completed(writers)
  expect(losses(writers)).toEqual([])
  const { backups } = openStack(ws)
  const report = await backups.verify()
  expect(report.problems, JSON.stringify(report.problems.slice(0, 5))).toEqual([])
  if (mayBeRemoved) return
  const missing: Completed[] = []
  for (const call of calls) {
    const info = await backups.getBackupInfo(call.uuid, call.path)
    if (info?.integrity !== call.integrity) missing.push(call)
  }
  expect(missing).toEqual([])
}

describe('maintenance racing backups in other processes', () => {
  it('gc in a loop never frees what a completed backup of a new patch recorded', async () => {
    const ws = await createWorkspace('race-gc')
    try {
      const stop = path.join(ws.base, 'stop')
      const gcs = [race(ws, 'gc-loop', { stop }), race(ws, 'gc-loop', { stop })]
      const writers = [0, 1].map((w) =>
        race(ws, 'backup-new', { prefix: `w${w}`, count: 150 * SCALE }),
      )
      await runRace(ws, writers, gcs)
      expect(completed(writers)).toHaveLength(300 * SCALE)
      await expectNothingLost(ws, writers, false)
    } finally {
      await ws.dispose()
    }
  })

  for (const overwrite of [false, true]) {
    it(`prune in a loop leaves every patch whole or gone (overwrite: ${overwrite})`, async () => {
      const ws = await createWorkspace('race-prune')
      try {
        const stop = path.join(ws.base, 'stop')
        const prune = race(ws, 'prune-loop', {
          stop,
          policies: [{ keepLast: 1 }, { olderThan: 0, keepLast: 1 }],
        })
        const writers = [0, 1, 2, 3].map((w) =>
          race(ws, 'backup-rounds', {
            prefix: `w${w % 2}`,
            uuids: 6,
            files: 3,
            rounds: 15 * SCALE,
            overwrite,
          }),
        )
        await runRace(ws, writers, [prune])
        await expectNothingLost(ws, writers, true)
      } finally {
        await ws.dispose()
      }
    })
  }

  it('two processes overwriting one file while a third frees the same bytes lose nothing', async () => {
    const ws = await createWorkspace('race-overwrite')
    try {
      const stop = path.join(ws.base, 'stop')
      const rounds = 100 * SCALE
      const churn = race(ws, 'churn-shared', { stop, tags: ['a', 'b'] })
      const writers = ['a', 'b'].map((tag) =>
        race(ws, 'overwrite', { uuid: 'shared', file: 'lib/x.js', tag, rounds }),
      )
      await runRace(ws, writers, [churn])
      const { backups } = openStack(ws)
      const last = await backups.getBackupInfo('shared', 'lib/x.js')
      expect(last).toBeDefined()
      await expectNothingLost(ws, writers, true)
    } finally {
      await ws.dispose()
    }
  })

  it('cleanup of a patch racing backups into it leaves it whole or gone, never half', async () => {
    const ws = await createWorkspace('race-cleanup')
    try {
      const stop = path.join(ws.base, 'stop')
      const cleanup = race(ws, 'cleanup-loop', { stop, uuid: 'p' })
      const writers = [0, 1].map((w) =>
        race(ws, 'backup-same', { uuid: 'p', file: `lib/f${w}.js`, calls: 400 * SCALE }),
      )
      await runRace(ws, writers, [cleanup])
      await expectNothingLost(ws, writers, true)
      // And the patch still works: a last backup lands and restores.
      const { backups } = openStack(ws)
      await writeFile(path.join(ws.project, 'lib/f0.js'), 'last')
      await backups.cleanupBackups('p')
      await backups.createBackup('p', 'lib/f0.js')
      await writeFile(path.join(ws.project, 'lib/f0.js'), 'patched')
      expect(await backups.restoreBackup('p', 'lib/f0.js')).toBe(true)
    } finally {
      await ws.dispose()
    }
  })

  it('a cleanup stalled past its lock lease removes nothing a backup recorded meanwhile', async () => {
    const ws = await createWorkspace('race-stall')
    try {
      const lockStaleMs = 2_000
      const { backups, manifests } = openStack(ws, { lockStaleMs })
      const files = Array.from({ length: 1500 }, (_, i) => `lib/f${i}.js`)
      for (const file of files) {
        await mkdir(path.dirname(path.join(ws.project, file)), { recursive: true })
        await writeFile(path.join(ws.project, file), `original ${file}`)
      }
      await backups.createBackups('p', files)
      const cleanup = race(ws, 'cleanup-once', { uuid: 'p', lockStaleMs })
      await cleanup.waitFor((m) => m.started === 'p')
      // Stop it (Ctrl-Z, SIGSTOP) once it has removed the manifest and is freeing the keys.
      const manifest = manifests.manifestPath('p')
      while (
        await stat(manifest).then(
          () => true,
          () => false,
        )
      )
        await sleep(1)
      cleanup.child.kill('SIGSTOP')
      await sleep(lockStaleMs + 500)
      // Its lock is stale now: a backup takes it over and records files it has yet to free.
      const late = files.slice(-20)
      for (const file of late) {
        await writeFile(path.join(ws.project, file), `backed up again ${file}`)
        await backups.createBackup('p', file)
      }
      cleanup.child.kill('SIGCONT')
      await cleanup.exited
      const report = await backups.verify('p')
      expect(report.problems).toEqual([])
      expect(report.ok).toBe(late.length)
    } finally {
      await ws.dispose()
    }
  })
})
