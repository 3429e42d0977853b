import { stat } from 'node:fs/promises'
import pMap from 'p-map'
import { PatchBackupError } from '../errors.js'
import type { ManifestRepository } from '../types.js'
import type { PruneResult } from './prune.js'
import { formatBytes } from './units.js'
import { bytesOf, type ContentRef, ContentTally, contentsOf } from './usage.js'

export interface StorageLimits {
  /** Most original bytes one patch may hold (each distinct content once). */
  maxPatchBytes?: number
  /** Most original bytes all patches together may hold (each distinct content once). */
  maxTotalBytes?: number
  /**
   * When a backup would cross `maxTotalBytes`: `'refuse'` (default) throws `QUOTA_EXCEEDED`;
   * `'prune-oldest'` first removes the oldest patches (never the one being written, nor one this
   * process is writing) until it fits. `maxPatchBytes` is always refused.
   */
  onExceeded?: 'refuse' | 'prune-oldest'
}

/** Room taken for a file about to be stored; `commit` once stored, `release` if not. */
export interface Reservation {
  commit(integrity: string, size: number, storedSize?: number): void
  release(): void
}

export interface Quota {
  /** Takes room for `size` bytes in patch `uuid`, or throws `QUOTA_EXCEEDED` (nothing written yet). */
  reserve(uuid: string, fileKey: string, size: number): Promise<Reservation>
  /** Whether the files of one batch fit together; the error to give each of them when not. */
  checkBatch(
    uuid: string,
    files: readonly { key: string; absolute: string }[],
  ): Promise<PatchBackupError | undefined>
  /** The patch is gone (cleanup, prune). */
  forget(uuid: string): void
}

export interface QuotaDeps {
  limits: StorageLimits
  manifests: ManifestRepository
  concurrency: number
  /** Removes the oldest patches but `uuid` until the rest hold at most `maxTotalBytes`. */
  makeRoom(uuid: string, maxTotalBytes: number): Promise<PruneResult>
}

interface Over {
  kind: 'patch' | 'total'
  used: number
  limit: number
}

export function checkLimits(limits: StorageLimits): void {
  for (const name of ['maxPatchBytes', 'maxTotalBytes'] as const) {
    const value = limits[name]
    if (value === undefined) continue
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
      throw new PatchBackupError(
        'INVALID_OPTIONS',
        `limits.${name} must be a non-negative number of bytes, got ${JSON.stringify(value)}.`,
      )
    }
  }
  if (![undefined, 'refuse', 'prune-oldest'].includes(limits.onExceeded)) {
    throw new PatchBackupError(
      'INVALID_OPTIONS',
      `limits.onExceeded must be 'refuse' or 'prune-oldest', got ${JSON.stringify(limits.onExceeded)}.`,
    )
  }
}

const bytes = (n: number) => `${formatBytes(n)} (${n} bytes)`

/**
 * Size caps, checked before anything is written. Usage is the sum of the sizes of the distinct
 * contents all manifests reference, read once, then kept up to date with this service's own
 * writes and removals. The cached figure can only be too high (an overwritten entry still
 * counts), so before refusing, the manifests are read again and the check repeated.
 */
export function createQuota(deps: QuotaDeps): Quota {
  const { limits, manifests, concurrency } = deps
  checkLimits(limits)
  const patches = new Map<string, Map<string, ContentRef>>()
  let tally = new ContentTally()
  const pending = new Map<string, number>()
  let pendingTotal = 0
  let loading: Promise<void> | undefined
  let roomQueue: Promise<unknown> = Promise.resolve()

  async function load(): Promise<void> {
    const uuids = await manifests.list()
    const next = new Map<string, Map<string, ContentRef>>()
    await pMap(
      uuids,
      async (uuid) => {
        // An unreadable manifest cannot be counted; `verify` reports it.
        const manifest = await manifests.get(uuid).catch(() => undefined)
        if (manifest) next.set(uuid, contentsOf(manifest))
      },
      { concurrency },
    )
    patches.clear()
    tally = new ContentTally()
    for (const [uuid, contents] of next) {
      patches.set(uuid, contents)
      tally.add(contents)
    }
  }

  function refresh(): Promise<void> {
    const run = load()
    loading = run.catch((error) => {
      loading = undefined // try again next time
      throw error
    })
    return loading
  }

  const ensureLoaded = () => loading ?? refresh()

  function over(uuid: string, size: number): Over | undefined {
    if (limits.maxPatchBytes !== undefined) {
      const contents = patches.get(uuid)
      const used = (contents ? bytesOf(contents) : 0) + (pending.get(uuid) ?? 0)
      if (used + size > limits.maxPatchBytes) {
        return { kind: 'patch', used, limit: limits.maxPatchBytes }
      }
    }
    if (limits.maxTotalBytes !== undefined) {
      const used = tally.bytes + pendingTotal
      if (used + size > limits.maxTotalBytes) {
        return { kind: 'total', used, limit: limits.maxTotalBytes }
      }
    }
    return undefined
  }

  /** Checks and, when it fits, takes the room in the same tick. */
  function admit(uuid: string, size: number): Over | undefined {
    const problem = over(uuid, size)
    if (problem) return problem
    pending.set(uuid, (pending.get(uuid) ?? 0) + size)
    pendingTotal += size
    return undefined
  }

  function give(uuid: string, size: number): void {
    const left = (pending.get(uuid) ?? 0) - size
    if (left > 0) pending.set(uuid, left)
    else pending.delete(uuid)
    pendingTotal -= size
  }

  async function take(uuid: string, size: number): Promise<Over | undefined> {
    await ensureLoaded()
    let problem = admit(uuid, size)
    if (!problem) return undefined
    await refresh()
    problem = admit(uuid, size)
    if (problem?.kind !== 'total' || limits.onExceeded !== 'prune-oldest') return problem
    // One room-maker at a time, so two backups do not both remove patches for the same bytes.
    const turn = roomQueue.then(async () => {
      let again = admit(uuid, size)
      if (again?.kind !== 'total') return again
      const target = (limits.maxTotalBytes as number) - pendingTotal - size
      if (target < 0) return again
      await deps.makeRoom(uuid, target)
      await refresh()
      again = admit(uuid, size)
      return again
    })
    roomQueue = turn.catch(() => undefined)
    return turn
  }

  function exceeded(uuid: string, what: string, size: number, problem: Over): PatchBackupError {
    const after = problem.used + size
    const pruned =
      limits.onExceeded === 'prune-oldest'
        ? ' even after removing the oldest patches that could go'
        : ''
    const message =
      problem.kind === 'patch'
        ? `Backing up ${what} (${bytes(size)}) would bring patch ${uuid} to ${bytes(after)}, over limits.maxPatchBytes of ${bytes(problem.limit)}. Nothing was written. Raise the limit or back up fewer files.`
        : `Backing up ${what} (${bytes(size)}) would bring the backups to ${bytes(after)}, over limits.maxTotalBytes of ${bytes(problem.limit)}${pruned}. Nothing was written. Free space with prune (e.g. olderThan 30 days), raise the limit, or set limits.onExceeded to 'prune-oldest'.`
    return new PatchBackupError('QUOTA_EXCEEDED', message)
  }

  return {
    async reserve(uuid, fileKey, size) {
      const problem = await take(uuid, size)
      if (problem) throw exceeded(uuid, fileKey, size, problem)
      let open = true
      return {
        commit(integrity, actualSize, storedSize) {
          if (!open) return
          open = false
          give(uuid, size)
          let contents = patches.get(uuid)
          if (!contents) {
            contents = new Map()
            patches.set(uuid, contents)
          }
          if (contents.has(integrity)) return
          const ref = { size: actualSize, storedSize: storedSize ?? actualSize }
          contents.set(integrity, ref)
          tally.add(new Map([[integrity, ref]]))
        },
        release() {
          if (!open) return
          open = false
          give(uuid, size)
        },
      }
    },

    async checkBatch(uuid, files) {
      if (files.length < 2) return undefined // one file is checked as it is stored
      const sizes = await pMap(
        files,
        (file) =>
          stat(file.absolute).then(
            (info) => (info.isFile() ? info.size : 0),
            () => 0, // unreadable: it fails on its own later
          ),
        { concurrency },
      )
      const total = sizes.reduce((sum, n) => sum + n, 0)
      const problem = await take(uuid, total)
      if (problem) return exceeded(uuid, `${files.length} files`, total, problem)
      give(uuid, total) // each file takes its own room as it is stored
      return undefined
    },

    forget(uuid) {
      const contents = patches.get(uuid)
      if (!contents) return
      patches.delete(uuid)
      tally.remove(contents)
    },
  }
}
