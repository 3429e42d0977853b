import { createHash, randomBytes } from 'node:crypto'
import { readlinkSync } from 'node:fs'
import { hostname } from 'node:os'
import { setTimeout as sleep } from 'node:timers/promises'
import { isDeadProcess, PatchBackupError } from '@patch-backup/core'
import type { Bucket, ListedObject } from '../bucket.js'

/*
 * The lock of one patch in a bucket, for the service's read-check-write sequences: a backup's read
 * of the manifest, store write and manifest write; a cleanup's read, tombstone and key removals.
 * Owns the objects under <prefix>/locks/; never touches manifests or the store's objects.
 *
 * restic's repository lock, per patch, and with no conditional write: a contender writes a lock
 * object under a name of its own, then lists the patch's locks. It holds the lock once a listing
 * made after its write shows no other live lock. Two contenders cannot both get there: the one
 * whose write landed second lists after both writes, so it sees the first. When both see each
 * other, the one whose name sorts later deletes its object and tries again later; the other waits
 * for it to go. S3 lists are strongly consistent (since December 2020; MinIO's always were), which
 * is all this needs. See the README, "The lock of a patch".
 *
 * A lock object's name says who holds it: `<stamp>-<random>-<host>-<pid>.lock/lock`, where <host>
 * is a hash of the host name and its pid namespace. Each in a folder of its own: some servers keep
 * objects as files and drop a folder when its last one goes, racing a write into that folder
 * (s3rver then acknowledges a PUT whose file it never wrote). A holder writes a new object every
 * third of `staleMs` (and deletes the one before), so a lock object older than `staleMs` in the
 * server's clock is one whose holder stopped: killed, or stalled. One of a dead process on this
 * host is stale at once.
 */

export const DEFAULT_LOCK_STALE_MS = 30_000
export const DEFAULT_LOCK_TIMEOUT_MS = 60_000
/** Below this a lock's refresh (a third of it) would cost a request every few hundred ms. */
export const MIN_LOCK_STALE_MS = 1_000

/** Listings give `LastModified` to the second. */
const TIME_GRAIN_MS = 1000
/** A contender waiting for the one before it lists again this often (growing): a hand-over costs it. */
const FIRST_POLL_MS = 10
const MAX_POLL_MS = 100
/** A contender that stepped back writes its object again after this long (growing). */
const FIRST_RETRY_MS = 20
const MAX_RETRY_MS = 250
const NAME = /^(\d{13})-[0-9a-f]{16}-([0-9a-f]{8})-(\d+)\.lock$/

let ownHost: string | undefined
/** This host and pid namespace: a pid means the same process only where both are the same. */
function hostTag(): string {
  if (ownHost === undefined) {
    let namespace = ''
    try {
      namespace = readlinkSync('/proc/self/ns/pid')
    } catch {
      // Not Linux: the host name alone.
    }
    ownHost = createHash('sha256').update(`${hostname()}\0${namespace}`).digest('hex').slice(0, 8)
  }
  return ownHost
}

export interface PatchLocksOptions {
  bucket: Bucket
  /** `<prefix>/locks/` */
  root: string
  staleMs: number
  timeoutMs: number
}

export interface HeldPatchLock {
  /**
   * Throws LOCK_COMPROMISED when others may take this lock to be stale: its last refresh started
   * more than two thirds of `staleMs` ago (this process stalled, or its refreshes failed).
   */
  verify(): void
  /** Never throws: a lock object left behind goes stale and is ignored. */
  release(): Promise<void>
}

export interface PatchLocks {
  /** `wait: false`: PATCH_BUSY at once when another live lock is there. */
  acquire(uuid: string, wait: boolean): Promise<HeldPatchLock>
}

interface Written {
  name: string
  /** `performance.now()` when the PUT was sent and when it returned. */
  sent: number
  returned: number
}

function busy(uuid: string): PatchBackupError {
  return new PatchBackupError(
    'PATCH_BUSY',
    `Patch ${uuid} is being written by another call; it was left alone. Retry when it is done.`,
  )
}

export function createPatchLocks({
  bucket,
  root,
  staleMs,
  timeoutMs,
}: PatchLocksOptions): PatchLocks {
  let lastStamp = 0
  const folder = (uuid: string) => `${root}${uuid}/`
  const objectOf = (uuid: string, name: string) => `${folder(uuid)}${name}/lock`

  function ticket(): number {
    // Later than any lock name this writer has seen: a clock behind the others' does not put its
    // next acquisitions before those it found (only who waits for whom depends on it, not safety).
    lastStamp = Math.max(Date.now(), lastStamp + 1)
    return lastStamp
  }

  async function write(uuid: string, stamp: number): Promise<Written> {
    // The same stamp for every object of one acquisition (a new random part each time): one
    // that steps back and comes again keeps its place in line, so newcomers cannot starve it.
    const name = `${String(stamp).padStart(13, '0')}-${randomBytes(8).toString('hex')}-${hostTag()}-${process.pid}.lock`
    const sent = performance.now()
    await bucket.write(
      objectOf(uuid, name),
      JSON.stringify({ uuid, host: hostname(), pid: process.pid, at: new Date().toISOString() }),
    )
    return { name, sent, returned: performance.now() }
  }

  /** Whether a lock object (not ours) may still have a holder, judged in the server's clock. */
  function live(name: string, listed: ListedObject, serverNow: number): boolean {
    const match = NAME.exec(name)
    if (!match) return false // not a lock object of this version: nothing holds it
    if (match[2] === hostTag() && isDeadProcess(Number(match[3]))) return false
    const written = listed.lastModified?.getTime()
    // No time given (by the server, for it or for ours): live; its holder deletes it, or a person.
    if (written === undefined || Number.isNaN(serverNow)) return true
    // Times come to the second (S3, s3rver): the object may be up to a second younger than it says.
    return serverNow - (written + TIME_GRAIN_MS) <= staleMs
  }

  return {
    async acquire(uuid, wait) {
      const base = folder(uuid)
      const deadline = performance.now() + timeoutMs
      let delay = FIRST_RETRY_MS
      const stamp = ticket()
      for (;;) {
        // Ours, oldest first; the refresher adds one and drops the one before it.
        const ours: Written[] = [await write(uuid, stamp)]
        let lastSent = ours[0]?.sent ?? 0
        let stopped = false
        // Once lapsed, for good: another may have taken the lock meanwhile, and a refresh now
        // would only hide that (a stalled process runs its overdue timers as soon as it wakes).
        let lapsed = false
        const lapsing = () => performance.now() - lastSent > (staleMs * 2) / 3
        let refreshing: Promise<void> = Promise.resolve()
        const refresh = async () => {
          if (lapsed || lapsing()) {
            lapsed = true
            return
          }
          const next = await write(uuid, stamp)
          if (stopped) {
            await bucket.delete(objectOf(uuid, next.name)).catch(() => {})
            return
          }
          ours.push(next)
          lastSent = next.sent
          const old = ours.splice(0, ours.length - 1)
          for (const o of old) await bucket.delete(objectOf(uuid, o.name)).catch(() => {})
        }
        const timer = setInterval(
          () => {
            refreshing = refreshing.then(refresh).catch(() => {
              // A failed refresh only brings the lock closer to stale; verify() says when.
            })
          },
          Math.max(1, Math.floor(staleMs / 3)),
        )
        timer.unref()
        const letGo = async () => {
          stopped = true
          clearInterval(timer)
          await refreshing
          for (const o of ours.splice(0)) {
            await bucket.delete(objectOf(uuid, o.name)).catch(() => {})
          }
        }
        const held: HeldPatchLock = {
          verify() {
            if (lapsed || lapsing()) {
              lapsed = true
              throw new PatchBackupError(
                'LOCK_COMPROMISED',
                `Lost the lock of patch ${uuid} in s3://${bucket.name}/${base}: it was last refreshed ${Math.round(performance.now() - lastSent)} ms ago, and others take a lock as abandoned after ${staleMs} ms. This process stalled or could not reach the server; nothing more was changed, retry the operation.`,
              )
            }
          },
          release: letGo,
        }
        let poll = FIRST_POLL_MS
        try {
          for (;;) {
            const listed = new Map<string, ListedObject>()
            for await (const item of bucket.listDetailed(base)) {
              const name = item.name.slice(base.length)
              if (name.endsWith('/lock')) listed.set(name.slice(0, -'/lock'.length), item)
            }
            const newest = ours.at(-1) as Written
            const mine = listed.get(newest.name)?.lastModified?.getTime()
            if (!listed.has(newest.name) || lapsed || lapsing()) {
              // We stalled while waiting: others may have taken our lock object to be abandoned
              // (and deleted it). Start over rather than hold a lock they ignore.
              lapsed = true
              break
            }
            // Server time now: when our newest object was written, plus what has passed since.
            const serverNow =
              mine === undefined ? Number.NaN : mine + (performance.now() - newest.returned)
            const own = new Set(ours.map((o) => o.name))
            const others: string[] = []
            for (const [name, item] of listed) {
              if (own.has(name)) continue
              lastStamp = Math.max(lastStamp, Number(NAME.exec(name)?.[1] ?? 0))
              if (live(name, item, serverNow)) others.push(name)
              else if (NAME.test(name)) {
                // Its holder is gone: tidy up (others ignore it already).
                void bucket.delete(item.name).catch(() => {})
              }
            }
            if (others.length === 0) return held
            if (!wait) break
            if (performance.now() > deadline) {
              await letGo()
              throw new PatchBackupError(
                'LOCK_TIMEOUT',
                `Timed out after ${timeoutMs} ms waiting for the lock of patch ${uuid} in s3://${bucket.name}/${base}. Another machine is updating this patch; retry when it is done. A lock whose holder died is ignored once it is ${staleMs} ms old; if no patch-backup process is running anywhere and it stays, delete the objects under that prefix.`,
              )
            }
            // Names decide who waits: an earlier one waits in place, a later one steps back.
            if (others.some((name) => name < newest.name)) break
            await sleep(poll + Math.random() * poll)
            poll = Math.min(poll * 1.5, MAX_POLL_MS)
          }
        } catch (error) {
          await letGo()
          throw error
        }
        await letGo()
        if (!wait) throw busy(uuid)
        if (performance.now() > deadline) {
          throw new PatchBackupError(
            'LOCK_TIMEOUT',
            `Timed out after ${timeoutMs} ms waiting for the lock of patch ${uuid} in s3://${bucket.name}/${base}. Other machines kept updating this patch; retry when they are done.`,
          )
        }
        await sleep(delay + Math.random() * delay)
        delay = Math.min(delay * 2, MAX_RETRY_MS)
      }
    },
  }
}
