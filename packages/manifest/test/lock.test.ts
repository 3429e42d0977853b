import { existsSync } from 'node:fs'
import { mkdir, rmdir, utimes } from 'node:fs/promises'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { isPatchBackupError } from '@patch-backup/core'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { acquireLock, MIN_LOCK_STALE_MS } from '../src/lock.js'
import { tempRoot } from './helpers.js'

let dir: string
let dispose: () => Promise<void>
beforeEach(async () => {
  ;({ dir, dispose } = await tempRoot())
  await mkdir(dir, { recursive: true })
})
afterEach(async () => {
  await dispose()
})

const request = () => ({
  target: join(dir, 'abc.json'),
  lockPath: join(dir, 'abc.json.lock'),
  staleMs: MIN_LOCK_STALE_MS,
  timeoutMs: 200,
})
/** Long enough for proper-lockfile's refresh timer (every staleMs / 2) to have run. */
const afterRefresh = () => sleep(MIN_LOCK_STALE_MS / 2 + 300)

async function lossOf(verify: () => Promise<void>): Promise<Error> {
  const error = await verify().then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(isPatchBackupError(error, 'LOCK_COMPROMISED')).toBe(true)
  expect((error as Error).message).toContain(request().lockPath)
  return error as Error
}

describe('acquireLock', () => {
  it('times out with LOCK_TIMEOUT naming the lock path, and can be had once released', async () => {
    const held = await acquireLock(request())
    const started = Date.now()
    const error = await acquireLock(request()).catch((e: unknown) => e)
    expect(isPatchBackupError(error, 'LOCK_TIMEOUT')).toBe(true)
    expect((error as Error).message).toContain(request().lockPath)
    expect(Date.now() - started).toBeGreaterThanOrEqual(190)
    await held.release()
    const again = await acquireLock(request())
    await expect(again.verify()).resolves.toBeUndefined()
    await again.release()
  })

  // proper-lockfile's default onCompromised throws from a timer and kills the process; the
  // loss must surface only as LOCK_COMPROMISED from verify().
  it('reports a lock removed under it as LOCK_COMPROMISED, at once and after the refresh, without crashing', async () => {
    const held = await acquireLock(request())
    await expect(held.verify()).resolves.toBeUndefined()
    await rmdir(request().lockPath)
    await lossOf(() => held.verify())
    await afterRefresh()
    await lossOf(() => held.verify())
    await expect(held.release()).resolves.toBeUndefined()
  })

  it('reports a lock replaced by another taker (double stale takeover) as LOCK_COMPROMISED', async () => {
    const held = await acquireLock(request())
    await rmdir(request().lockPath)
    await mkdir(request().lockPath)
    const error = await lossOf(() => held.verify())
    expect(error.message).toMatch(/replaced/)
    await held.release()
  })

  it("leaves the new holder's lock in place when it releases a lock it lost", async () => {
    const held = await acquireLock(request())
    await rmdir(request().lockPath)
    await sleep(20) // another moment: a new directory, as a takeover after the lease makes
    await mkdir(request().lockPath)
    await held.release()
    expect(existsSync(request().lockPath)).toBe(true)
  })

  it('reports a lock whose mtime another process changed (onCompromised) as LOCK_COMPROMISED', async () => {
    const held = await acquireLock(request())
    const past = new Date(Date.now() - 60_000)
    await utimes(request().lockPath, past, past)
    await afterRefresh()
    const error = await lossOf(() => held.verify())
    expect(error.message).toMatch(/stale threshold/)
    await held.release()
  })
})
