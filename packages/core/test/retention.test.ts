import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createMemoryPolicyState, type PruneResult, RETENTION_STAMP } from '../src/index.js'
import { content, createPolicyProject, DAY, type PolicyProject } from './policy-project.js'

let p: PolicyProject
beforeEach(async () => {
  p = await createPolicyProject()
})
afterEach(() => p.dispose())

async function file(name: string): Promise<string> {
  await p.write(`src/${name}.js`, content(name, 100))
  return `src/${name}.js`
}

describe('automatic retention', () => {
  it('runs after a backup at most once per interval, by the service clock, and stamps the run', async () => {
    const runs: PruneResult[] = []
    const state = createMemoryPolicyState()
    const backups = p.open({
      retention: { olderThan: 10 * DAY, intervalMs: DAY, state, onPrune: (r) => runs.push(r) },
    })
    await backups.createBackup('old', await file('a'))
    expect(runs).toHaveLength(1) // first backup: never ran before
    expect(await state.readStamp(RETENTION_STAMP)).toEqual(p.clock.now)
    p.clock.advance(11 * DAY)
    await backups.createBackup('new', await file('b'))
    expect(runs).toHaveLength(2)
    expect(runs[1]?.removed.map((r) => r.uuid)).toEqual(['old'])
    p.clock.advance(DAY / 2)
    await backups.createBackups('new', [await file('c')])
    await backups.createBackup('other', await file('d'))
    expect(runs).toHaveLength(2) // within the interval
    p.clock.advance(DAY / 2)
    await backups.createBackup('other', await file('e'))
    expect(runs).toHaveLength(3)
  })

  it('never removes the patch whose backup triggered it', async () => {
    const backups = p.open({ retention: { keepLast: 0, olderThan: 0, intervalMs: 0 } })
    await backups.createBackup('first', await file('a'))
    p.clock.advance(DAY)
    await backups.createBackup('second', await file('b'))
    expect(await backups.listAllPatches()).toEqual(['second'])
  })

  it('never runs twice at the same time in one process', async () => {
    let active = 0
    let most = 0
    let runs = 0
    // A slow stamp write stretches each run, so overlapping triggers would show.
    const backups = p.open({
      retention: {
        olderThan: DAY,
        intervalMs: 0,
        state: {
          ...createMemoryPolicyState(),
          readStamp: async () => undefined,
          writeStamp: async () => {
            active++
            runs++
            most = Math.max(most, active)
            await new Promise((r) => setTimeout(r, 30))
          },
          tryLock: undefined,
        },
        onPrune: () => {
          active--
        },
      },
    })
    const paths = await Promise.all(Array.from({ length: 8 }, (_, i) => file(`f${i}`)))
    await Promise.all(paths.map((path, i) => backups.createBackup(`p${i}`, path)))
    expect(runs).toBeGreaterThanOrEqual(1)
    expect(most).toBe(1)
  })

  it('skips a run another holder of the state has claimed', async () => {
    const state = createMemoryPolicyState()
    const release = await state.tryLock?.(RETENTION_STAMP)
    const runs: PruneResult[] = []
    const backups = p.open({
      retention: { olderThan: DAY, intervalMs: 0, state, onPrune: (r) => runs.push(r) },
    })
    await backups.createBackup('a', await file('a'))
    expect(runs).toHaveLength(0)
    await release?.()
    await backups.createBackup('b', await file('b'))
    expect(runs).toHaveLength(1)
  })

  it('reports a failed run through onError and keeps the backup', async () => {
    const errors: unknown[] = []
    const backups = p.open({
      retention: {
        olderThan: DAY,
        state: {
          ...createMemoryPolicyState(),
          readStamp: async () => {
            throw new Error('stamp unreadable')
          },
        },
        onError: (e) => errors.push(e),
      },
    })
    await expect(backups.createBackup('a', await file('a'))).resolves.toMatchObject({ size: 100 })
    expect(errors).toEqual([expect.objectContaining({ message: 'stamp unreadable' })])
  })

  it('refuses a policy with nothing to prune by', () => {
    expect(() => p.open({ retention: { intervalMs: DAY } })).toThrow(
      expect.objectContaining({ code: 'INVALID_OPTIONS' }),
    )
  })
})
