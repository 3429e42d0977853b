import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { isPatchBackupError } from '@patch-backup/core'
import { beforeAll, describe, it } from 'vitest'
import { createJsonManifestRepository, DEFAULT_LOCK_STALE_MS } from '../src/index.js'
import {
  addFile,
  assertBuilt,
  manifestWith,
  spawnWorker,
  tempRoot,
  type Worker,
} from './helpers.js'

/** A temp directory and the workers started in it, all gone when `body` ends (tests run concurrently). */
async function inScope(
  body: (scope: { dir: string; start: (args: string[]) => Worker }) => Promise<void>,
): Promise<void> {
  const { dir, dispose } = await tempRoot()
  const workers: Worker[] = []
  try {
    await body({
      dir,
      start(args) {
        const worker = spawnWorker(args)
        workers.push(worker)
        return worker
      },
    })
  } finally {
    for (const worker of workers) {
      worker.child.kill('SIGKILL')
      await worker.exited
    }
    await dispose()
  }
}

beforeAll(() => assertBuilt())

describe.concurrent('across processes', () => {
  it('lands every update of 4 processes x 50 on one uuid', ({ expect }) =>
    inScope(async ({ dir, start }) => {
      const running = Array.from({ length: 4 }, (_, p) =>
        start(['add', dir, 'shared', `p${p}`, '50']),
      )
      const results = await Promise.all(running.map((w) => w.exited))
      for (const [i, result] of results.entries()) {
        expect(result, running[i]?.output()).toEqual({ code: 0, signal: null })
      }
      const manifest = JSON.parse(await readFile(join(dir, 'shared.json'), 'utf8'))
      expect(Object.keys(manifest.files)).toHaveLength(200)
      for (let p = 0; p < 4; p++) {
        for (let i = 0; i < 50; i++) expect(manifest.files).toHaveProperty([`p${p}-${i}.js`])
      }
      await expect(readdir(dir)).resolves.toEqual(['shared.json'])
    }))

  it('waits for a live holder and gives up with LOCK_TIMEOUT naming the lock', ({ expect }) =>
    inScope(async ({ dir, start }) => {
      // The holder keeps refreshing its lock: with a 2 s stale time and a 3.5 s wait, a waiter
      // that wrongly took a live lock for stale would get it.
      const holder = start(['hold', dir, 'held', '2000'])
      await holder.waitFor('locked')
      const repo = createJsonManifestRepository({ dir, lockStaleMs: 2000, lockTimeoutMs: 3500 })
      const started = Date.now()
      const error = await repo.update('held', addFile('held', 'a.js')).catch((e: unknown) => e)
      expect(isPatchBackupError(error, 'LOCK_TIMEOUT')).toBe(true)
      expect((error as Error).message).toContain(repo.lockPath('held'))
      expect((error as { path?: string }).path).toBe(repo.lockPath('held'))
      expect(Date.now() - started).toBeGreaterThanOrEqual(3400)
      await expect(repo.get('held')).resolves.toBeUndefined()
    }))

  it('takes over the lock of a holder killed with SIGKILL within 10 s', ({ expect }) =>
    inScope(async ({ dir, start }) => {
      const repo = createJsonManifestRepository({ dir })
      await repo.update('killed', () => manifestWith('killed', ['before.js']))
      const holder = start(['hold', dir, 'killed'])
      await holder.waitFor('locked')
      const quick = createJsonManifestRepository({ dir, lockTimeoutMs: 100 })
      await expect(quick.update('killed', addFile('killed', 'x.js'))).rejects.toMatchObject({
        code: 'LOCK_TIMEOUT',
      })
      holder.child.kill('SIGKILL')
      await holder.exited
      const started = Date.now()
      await repo.update('killed', addFile('killed', 'after.js'))
      const took = Date.now() - started
      console.log(`stale lock of a SIGKILLed holder taken over after ${took} ms`)
      // proper-lockfile may date a fresh lock up to 1 s ahead (its mtime precision probe).
      expect(took).toBeLessThan(Math.min(10_000, DEFAULT_LOCK_STALE_MS + 2_000))
      expect(Object.keys((await repo.get('killed'))?.files ?? {})).toEqual([
        'before.js',
        'after.js',
      ])
      await sleep(50) // our own lock is kept a few milliseconds for a next call (lock-keeper.ts)
      await expect(readdir(dir)).resolves.toEqual(['killed.json'])
    }))

  it('recovers from a process killed in the middle of an update', ({ expect }) =>
    inScope(async ({ dir, start }) => {
      const repo = createJsonManifestRepository({ dir })
      await repo.update('midway', () => manifestWith('midway', ['before.js']))
      const before = await readFile(join(dir, 'midway.json'), 'utf8')
      const child = start(['block', dir, 'midway'])
      await child.waitFor('locked')
      child.child.kill('SIGKILL')
      await child.exited
      await expect(readFile(join(dir, 'midway.json'), 'utf8')).resolves.toBe(before)
      const started = Date.now()
      await repo.update('midway', addFile('midway', 'after.js'))
      expect(Date.now() - started).toBeLessThan(10_000)
      expect(Object.keys((await repo.get('midway'))?.files ?? {})).toEqual([
        'before.js',
        'after.js',
      ])
    }))
})
