// A patch's lock kept for a few milliseconds after a call, for the next call of this process.
// A patcher backs up one file per call, each awaited; taking and releasing the lock (a directory
// made and removed, with its inode and block) was half of such a call. A kept lock is released
// once no call used it for KEEP_IDLE_MS, and after KEEP_MAX_MS of holding it without a break it is
// released and not taken again by this process for PAUSE_MS: other processes poll for the lock,
// and a window of microseconds between a release and the next take would starve them.

import { setTimeout as sleep } from 'node:timers/promises'
import type { HeldLock } from './lock.js'

/**
 * Milliseconds on a monotonic clock. process.hrtime, not performance.now(): the `performance`
 * global loads node's perf_hooks at its first use, which a CLI backup otherwise never needs.
 */
export const monotonicMs = () => Number(process.hrtime.bigint()) / 1e6

export const KEEP_IDLE_MS = 5
const KEEP_MAX_MS = 100
const PAUSE_MS = 5

interface Kept {
  held: HeldLock
  /** When this process took the lock (monotonicMs()). */
  since: number
  timer?: NodeJS.Timeout
}

const kept = new Map<string, Kept>()
const pausedUntil = new Map<string, number>()

/**
 * The lock of `path` this process kept from its previous call, checked first; `undefined` when
 * there is none or it was lost meanwhile (another process took it over: it is theirs now).
 */
export function takeKept(path: string): Kept | undefined {
  const found = kept.get(path)
  if (found === undefined) return undefined
  kept.delete(path)
  clearTimeout(found.timer)
  try {
    found.held.verifySync()
    return found
  } catch {
    return undefined
  }
}

/** Before taking the lock of `path` anew: waits out a pause this process owes other processes. */
export async function waitTurn(path: string): Promise<void> {
  const until = pausedUntil.get(path)
  if (until === undefined) return
  pausedUntil.delete(path)
  const left = until - monotonicMs()
  if (left > 0) await sleep(left)
}

/** After a call: keeps the lock for the next one, or releases it when it was held long enough. */
export async function keepOrRelease(path: string, lock: Kept): Promise<void> {
  const now = monotonicMs()
  if (now - lock.since >= KEEP_MAX_MS) {
    await lock.held.release()
    pausedUntil.set(path, now + PAUSE_MS)
    return
  }
  const entry: Kept = { held: lock.held, since: lock.since }
  entry.timer = setTimeout(() => {
    if (kept.get(path) !== entry) return
    kept.delete(path)
    void entry.held.release()
  }, KEEP_IDLE_MS)
  // A process with nothing else to do exits at once; proper-lockfile's exit hook releases the lock.
  entry.timer.unref()
  kept.set(path, entry)
}
