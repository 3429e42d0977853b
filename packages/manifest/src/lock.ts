import fs, { type PathLike, statSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import { PatchBackupError } from '@patch-backup/core'

// proper-lockfile loads signal-exit, which listens for SIGXFSZ and, while it is the only listener,
// re-raises it: a write past a file-size limit (`ulimit -f`) then kills the process instead of
// failing with EFBIG, as it does in plain Node (which ignores SIGXFSZ). One listener of ours keeps
// it an error the caller sees (MANIFEST_UNWRITABLE, STORE_ERROR, with the path).
if (process.platform !== 'win32') process.on('SIGXFSZ', keepFileSizeLimitAnError)
function keepFileSizeLimitAnError(): void {}

// Loaded at the first lock, not with the package: reading manifests (list, info, status) needs
// no lock, and proper-lockfile with graceful-fs and signal-exit is a fifth of a CLI start-up.
let lockfileModule: Promise<typeof import('proper-lockfile')> | undefined
export function loadLockfile() {
  lockfileModule ??= import('proper-lockfile').then((m) => m.default ?? m)
  return lockfileModule
}

export const DEFAULT_LOCK_STALE_MS = 5_000
export const DEFAULT_LOCK_TIMEOUT_MS = 30_000
/** proper-lockfile raises anything lower to this. */
export const MIN_LOCK_STALE_MS = 2_000

const FIRST_RETRY_MS = 2
const MAX_RETRY_MS = 100

export interface LockRequest {
  /** The file the lock protects (the manifest); it need not exist. Absolute. */
  target: string
  /** The lock directory proper-lockfile creates with `mkdir`. */
  lockPath: string
  staleMs: number
  timeoutMs: number
}

export interface HeldLock {
  readonly lockPath: string
  /**
   * Rejects with LOCK_COMPROMISED if the lock was lost: proper-lockfile noticed (its refresh
   * found the lock gone or changed), or the lock directory is no longer the one this process
   * created. The second check covers two waiters taking over one stale lock at once, where the
   * later one removes the earlier one's fresh lock; proper-lockfile would notice only at its
   * next refresh, seconds later.
   */
  verify(): Promise<void>
  /** `verify` with synchronous calls (one `stat`). */
  verifySync(): void
  /** Never throws: a lock that cannot be removed goes stale and is taken over. */
  release(): Promise<void>
}

function errnoCode(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | undefined)?.code
}

/**
 * Takes the cross-process lock, polling with a short, growing, jittered delay until
 * `timeoutMs` has passed. proper-lockfile's own `retries` counts attempts, not time,
 * so the deadline is kept here. Rejects with the raw fs error for anything but a held
 * lock (ENOENT when the directory is missing: the caller creates it and retries).
 */
export async function acquireLock(request: LockRequest): Promise<HeldLock> {
  const { target, lockPath, staleMs, timeoutMs } = request
  const lockfile = await loadLockfile()
  const deadline = Date.now() + timeoutMs
  let compromised: Error | undefined
  let delay = FIRST_RETRY_MS
  // Inode and birth time: an inode number alone may be reused by the replacing directory.
  const identity = () => {
    const stats = statSync(lockPath)
    return `${stats.ino}:${stats.birthtimeMs}`
  }
  /** The identity of the lock directory this process made, once it holds it. */
  let created: string | undefined
  // proper-lockfile removes the lock directory on release and, for every lock it still counts
  // as held, when the process exits: it never looks whose directory it is by then. Once this
  // process holds the lock, its fs removes only the directory it made, so a lock another process
  // took over (after a stall past the lease) stays theirs whatever proper-lockfile thinks.
  const guardedFs = {
    ...fs,
    rmdirSync(path: PathLike) {
      if (created !== undefined) {
        let now: string | undefined
        try {
          now = identity()
        } catch {
          return
        }
        if (now !== created) return
      }
      fs.rmdirSync(path)
    },
  }
  for (;;) {
    try {
      // lockSync: the same mkdir protocol with synchronous calls (mkdir, utimes, stat: a few
      // microseconds each instead of a thread-pool round trip each). Only an attempt is
      // synchronous; waiting for a held lock below is not.
      const release = lockfile.lockSync(target, {
        lockfilePath: lockPath,
        realpath: false,
        stale: staleMs,
        retries: 0,
        fs: guardedFs,
        // The default rethrows from a timer, which would crash the process. It can even fire
        // after release (an mtime refresh racing the rmdir), so it only records.
        onCompromised: (error) => {
          compromised = error
        },
      })
      try {
        created = identity()
      } catch {}
      const lost = (cause: Error) =>
        new PatchBackupError(
          'LOCK_COMPROMISED',
          `Lost the lock ${lockPath} while updating ${target}: ${cause.message}. This process stalled for longer than ${staleMs} ms or the lock was removed, so another process may hold it now; nothing was changed, retry the operation.`,
          { path: lockPath, cause },
        )
      const verifySync = () => {
        if (compromised !== undefined) throw lost(compromised)
        let now: string
        try {
          now = identity()
        } catch (error) {
          throw lost(error as Error)
        }
        if (created !== undefined && now !== created) {
          throw lost(new Error('the lock directory was replaced by another process'))
        }
      }
      return {
        lockPath,
        verifySync,
        async verify() {
          verifySync()
        },
        async release() {
          try {
            // A lock another process took over is theirs now: removing its directory would let a
            // third process in beside them. proper-lockfile's own release does not look.
            verifySync()
            release()
          } catch {
            // Lost (see above), ERELEASED after a compromise, or an rmdir failure: the lock then
            // goes stale.
          }
        },
      }
    } catch (error) {
      if (errnoCode(error) !== 'ELOCKED') throw error
      const left = deadline - Date.now()
      if (left <= 0) {
        throw new PatchBackupError(
          'LOCK_TIMEOUT',
          `Timed out after ${timeoutMs} ms waiting for the lock ${lockPath} on ${target}. Another process is updating this patch; retry when it is done. A lock left by a process that died is taken over once it is ${staleMs} ms old; if no patch-backup process is running and the lock stays, delete ${lockPath}.`,
          { path: lockPath, cause: error },
        )
      }
      await sleep(Math.min(left, delay * (0.5 + Math.random())))
      delay = Math.min(delay * 2, MAX_RETRY_MS)
    }
  }
}
