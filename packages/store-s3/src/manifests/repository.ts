import { AsyncLocalStorage } from 'node:async_hooks'
import { randomUUID } from 'node:crypto'
import type { S3Client } from '@aws-sdk/client-s3'
import {
  asStoreError,
  isValidUuid,
  KeyedQueue,
  type ManifestRepository,
  type ManifestTransaction,
  type ManifestUpdater,
  PatchBackupError,
  type PatchManifest,
  parseUuid,
  type WithLockOptions,
} from '@patch-backup/core'
import { type Bucket, openBucket } from '../bucket.js'
import { normalizePrefix } from '../object-names.js'
import {
  createPatchLocks,
  DEFAULT_LOCK_STALE_MS,
  DEFAULT_LOCK_TIMEOUT_MS,
  type HeldPatchLock,
  MIN_LOCK_STALE_MS,
} from './lock.js'
import { deltaName, endsDeleted, parseName, snapshotName } from './names.js'
import {
  diffManifests,
  foldRecords,
  type ManifestRecord,
  parseRecord,
  SNAPSHOT_FORMAT,
  type SnapshotRecord,
} from './records.js'

/*
 * The manifests of a repository in an S3 bucket, shared by every machine with the URL, with no
 * conditional write: see the README ("Manifests in the bucket") for the argument. Owns the objects
 * under <prefix>/manifests/ (and, through lock.ts, <prefix>/locks/); never touches the store's.
 */

/** Objects of one patch above which an update also compacts the ones older than the margin. */
const DEFAULT_COMPACT_AFTER = 32
/** How old an object must be before compaction may fold it (kopia's safety margin). */
const DEFAULT_COMPACTION_MARGIN_MS = 10 * 60 * 1000
/** An object that does not parse is read again this many times, a little later each time. */
const CORRUPT_REREADS = 3
/** GETs in flight while one patch's objects are read. */
const READ_CONCURRENCY = 16
/** A listed object deleted before it was read, by a compaction: list again, this many times. */
const RELIST_ATTEMPTS = 5

export interface S3ManifestRepositoryOptions {
  client: S3Client
  bucket: string
  /** The same prefix as the store's: manifests go to `<prefix>/manifests/`. */
  prefix?: string
  /** An update that finds more objects than this for its patch compacts the old ones. Default 32. */
  compactAfter?: number
  /**
   * Compaction folds only objects whose name stamp is older than this, so that a writer whose
   * object is still on its way (slow request, clock behind) is never folded past. Default 10 minutes.
   */
  compactionMarginMs?: number
  /**
   * A patch's lock whose holder has not refreshed it for this long (in the server's clock) is
   * taken as abandoned: its holder was killed or stalled. Holders refresh every third of it. A
   * lock of a dead process on this host is abandoned at once. Default 30 s. Every machine sharing
   * the bucket should use the same value.
   */
  lockStaleMs?: number
  /** How long `update`, `delete` and `withLock` wait for a patch's lock. Default 60 s. */
  lockTimeoutMs?: number
  /** The clock names are stamped with. Default `Date.now`. */
  now?: () => number
}

export interface CompactResult {
  /** Objects folded into a snapshot (or deleted with a deleted manifest) and removed. */
  removed: number
  /** Snapshots written. */
  written: number
}

export interface S3ManifestRepository extends ManifestRepository {
  /**
   * Runs `task` holding the patch's lock in the bucket: no other update or locked task of the
   * patch, on any machine sharing the bucket, runs meanwhile (see lock.ts).
   */
  withLock<T>(
    uuid: string,
    task: (tx: ManifestTransaction) => Promise<T>,
    options?: WithLockOptions,
  ): Promise<T>
  readonly bucket: string
  /** Where the manifests live: `<prefix>/manifests/`. */
  readonly root: string
  /**
   * Folds the objects older than the margin into one snapshot per patch (one patch, or all) and
   * deletes what it folded; a deleted patch whose objects are all that old leaves nothing behind.
   */
  compact(uuid?: string): Promise<CompactResult>
}

interface Listed {
  name: string
  etag?: string
}

/** A patch's lock as the task holding it sees it. */
interface Hold {
  uuid: string
  held: HeldPatchLock
  /**
   * The patch as last read or written under this hold. Nobody else writes it meanwhile, so the
   * task's updates start from it instead of listing the patch again.
   */
  loaded?: Loaded
}

interface Loaded {
  /** Readable objects of the patch, by name (within its folder), sorted. */
  records: [string, ManifestRecord][]
  state: PatchManifest | undefined
  /** The greatest stamp among the patch's names (0 for none). */
  maxStamp: number
  /** When the listing was asked for: compaction's margin counts back from here, not from now. */
  listedAt: number
}

function invalid(message: string): PatchBackupError {
  return new PatchBackupError('INVALID_OPTIONS', message)
}

async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>) {
  const results: R[] = new Array(items.length)
  let next = 0
  const worker = async () => {
    while (next < items.length) {
      const i = next++
      results[i] = await fn(items[i] as T)
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
  return results
}

/** `ManifestRepository` on S3: immutable per-update objects that every reader merges the same way. */
export function createS3ManifestRepository(
  options: S3ManifestRepositoryOptions,
): S3ManifestRepository {
  if (typeof options?.client?.send !== 'function') {
    throw invalid(
      'createS3ManifestRepository needs { client }: an S3Client from @aws-sdk/client-s3.',
    )
  }
  if (typeof options.bucket !== 'string' || options.bucket.length === 0) {
    throw invalid('createS3ManifestRepository needs { bucket }: the name of the bucket to use.')
  }
  const compactAfter = options.compactAfter ?? DEFAULT_COMPACT_AFTER
  const marginMs = options.compactionMarginMs ?? DEFAULT_COMPACTION_MARGIN_MS
  if (!Number.isSafeInteger(compactAfter) || compactAfter < 1) {
    throw invalid('createS3ManifestRepository: compactAfter must be a whole number, at least 1.')
  }
  if (!Number.isFinite(marginMs) || marginMs < 0) {
    throw invalid('createS3ManifestRepository: compactionMarginMs must be 0 or more.')
  }
  const staleMs = options.lockStaleMs ?? DEFAULT_LOCK_STALE_MS
  if (!Number.isFinite(staleMs) || staleMs < MIN_LOCK_STALE_MS) {
    throw invalid(
      `createS3ManifestRepository: lockStaleMs must be at least ${MIN_LOCK_STALE_MS} ms.`,
    )
  }
  const timeoutMs = options.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS
  if (!Number.isFinite(timeoutMs) || timeoutMs < 0) {
    throw invalid('createS3ManifestRepository: lockTimeoutMs must be 0 or more.')
  }
  const now = options.now ?? Date.now
  const bucket: Bucket = openBucket(options.client, options.bucket)
  const prefix = normalizePrefix(options.prefix)
  const root = `${prefix ? `${prefix}/` : ''}manifests/`
  const folder = (uuid: string) => `${root}${uuid}/`
  // The store's temp folder: whatever a crash leaves there is nobody's.
  const tmpRoot = `${prefix ? `${prefix}/` : ''}tmp/`
  const queue = new KeyedQueue()
  const locks = createPatchLocks({
    bucket,
    root: `${prefix ? `${prefix}/` : ''}locks/`,
    staleMs,
    timeoutMs,
  })
  // Which patch's lock the running task holds, so that its own updates do not wait for it.
  const holding = new AsyncLocalStorage<Hold>()
  // Objects never change once written, so what was read once stays true (until compaction deletes it).
  const cache = new Map<string, { record: ManifestRecord; etag: string }>()
  let lastStamp = 0

  const where = (uuid: string, name: string) => `s3://${options.bucket}/${folder(uuid)}${name}`

  function corrupt(uuid: string, name: string, cause?: unknown): PatchBackupError {
    const object = where(uuid, name)
    return new PatchBackupError(
      'MANIFEST_CORRUPT',
      `The manifest object ${object} of patch ${uuid} is not a manifest record this version can read. Delete that object (the patch loses what that update recorded) or put back a good copy of it.`,
      { cause, path: object },
    )
  }

  /** One object's record; `undefined` when it is gone (a compaction deleted it after the list). */
  async function readRecord(uuid: string, listed: Listed): Promise<ManifestRecord | undefined> {
    const full = `${folder(uuid)}${listed.name}`
    const cached = cache.get(full)
    // Keyed by ETag too: an object replaced behind our back (a hand edit) is read again.
    if (cached && (cached.etag === listed.etag || listed.etag === undefined)) return cached.record
    let record: ManifestRecord | undefined
    for (let attempt = 0; ; attempt++) {
      const text = await bucket.readText(full).catch(async (error: unknown) => {
        // A read cut short because a compaction deleted the object meanwhile is a gone object.
        if ((await bucket.size(full)) === undefined) return undefined
        throw error
      })
      if (text === undefined) return undefined
      record = parseRecord(text, uuid)
      if (record) break
      // Some servers (s3rver) let a reader see an object while it is still being written: only an
      // object that stays unreadable is corrupt.
      if (attempt >= CORRUPT_REREADS) throw corrupt(uuid, listed.name)
      await new Promise((resolve) => setTimeout(resolve, 50 * 2 ** attempt))
    }
    if (listed.etag !== undefined) cache.set(full, { record, etag: listed.etag })
    return record
  }

  async function listNames(uuid: string): Promise<Listed[]> {
    const base = folder(uuid)
    const names: Listed[] = []
    for await (const { name: full, etag } of bucket.listDetailed(base)) {
      const name = full.slice(base.length)
      // Only what this repository writes: anything else (a stray upload) is not part of the patch.
      if (parseName(name)) names.push({ name, etag })
    }
    return names.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
  }

  async function load(uuid: string): Promise<Loaded> {
    for (let attempt = 1; ; attempt++) {
      const listedAt = now()
      const listed = await listNames(uuid)
      const read = await mapLimit(listed, READ_CONCURRENCY, (item) => readRecord(uuid, item))
      const names = listed.map((item) => item.name)
      const records: [string, ManifestRecord][] = []
      const gone: string[] = []
      names.forEach((name, i) => {
        const record = read[i]
        if (record) records.push([name, record])
        else gone.push(name)
      })
      const covered = new Set(
        records.flatMap(([, r]) => (r.format === SNAPSHOT_FORMAT ? r.merged : [])),
      )
      if (gone.every((name) => covered.has(name)) || attempt >= RELIST_ATTEMPTS) {
        const maxStamp = names.length ? (parseName(names.at(-1) as string)?.stamp ?? 0) : 0
        const state = foldRecords(records)
        return { records, state, maxStamp, listedAt }
      }
    }
  }

  /**
   * Makes `record` visible all at once, under the name `nameIt` gives once the body is up. On S3
   * one PutObject would do, but not every S3-compatible server writes a PUT atomically (s3rver's
   * file store leaves a torn object when the connection drops mid-body): so the body goes to a
   * temp object first and a server-side copy, which only starts once the whole body is stored,
   * puts it in place. Naming it only then keeps the time in its name close to when it appears.
   */
  async function publish(
    uuid: string,
    record: ManifestRecord,
    nameIt: () => string,
  ): Promise<string> {
    // A folder of its own (not one name among others in tmp/): some servers keep objects as files
    // and drop a folder when its last one goes, racing a write into that same folder.
    const tmp = `${tmpRoot}${randomUUID()}/manifest.json`
    await bucket.write(tmp, JSON.stringify(record))
    try {
      const name = nameIt()
      const etag = await bucket.copyTagged(tmp, `${folder(uuid)}${name}`)
      if (etag === undefined)
        throw new Error(`the temp object ${tmp} vanished before it was copied`)
      if (etag) cache.set(`${folder(uuid)}${name}`, { record, etag })
      return name
    } finally {
      await bucket.delete(tmp).catch(() => {})
    }
  }

  function nextStamp(seen: number): number {
    // Never before anything this writer has seen or written: a clock behind the others' does not
    // put a new change before the changes it was computed from.
    lastStamp = Math.max(now(), lastStamp + 1, seen + 1)
    return lastStamp
  }

  async function compactLoaded(uuid: string, loaded: Loaded): Promise<CompactResult> {
    const result: CompactResult = { removed: 0, written: 0 }
    // From the listing's time: an object stamped before this had landed before the listing (the
    // margin's assumption), so the listing holds every object the snapshot stands in for.
    const cutoff = loaded.listedAt - marginMs
    // Only a prefix in name order (names sort by stamp): a snapshot stands in for all before it.
    let count = 0
    while (count < loaded.records.length) {
      const name = (loaded.records[count] as [string, ManifestRecord])[0]
      if ((parseName(name)?.stamp ?? cutoff) >= cutoff) break
      count++
    }
    const folded = loaded.records.slice(0, count)
    const everything = folded.length === loaded.records.length
    const state = foldRecords(folded)
    if (state === undefined && everything && folded.length > 0) {
      // A deleted patch with nothing recent: no snapshot needed, its folder simply goes.
    } else if (folded.length >= 2) {
      const snapshot: SnapshotRecord = {
        format: SNAPSHOT_FORMAT,
        uuid,
        at: new Date(now()).toISOString(),
        state: state ?? null,
        merged: folded.map(([name]) => name),
      }
      await publish(uuid, snapshot, () => snapshotName(snapshot.merged, state === undefined))
      result.written++
    } else return result
    // Only after the snapshot is there: a reader that lists now sees it and skips what it merged.
    for (const [name] of folded) {
      await bucket.delete(`${folder(uuid)}${name}`)
      cache.delete(`${folder(uuid)}${name}`)
      result.removed++
    }
    return result
  }

  /**
   * Writes `fn`'s change of the manifest as a new object, holding the patch's lock (so `before` is
   * still the whole manifest when the object lands), and resolves the manifest after it.
   */
  async function write(
    id: string,
    fn: ManifestUpdater,
    hold: Hold,
  ): Promise<PatchManifest | undefined> {
    let before: Loaded
    try {
      before = hold.loaded ?? (await load(id))
    } catch (error) {
      throw asStoreError(error, `read the manifest of ${id}`)
    }
    // The updater gets its own copy: what it changes is compared with what was read.
    const current = before.state && structuredClone(before.state)
    const next = fn(current)
    const delta = diffManifests(id, before.state, next, new Date(now()).toISOString())
    if (!delta) return before.state && structuredClone(before.state)
    const deletes = delta.ops.length === 1 && delta.ops[0]?.op === 'delete'
    let name = ''
    try {
      // Others may take a lock not refreshed for a while to be abandoned: write nothing then.
      hold.held.verify()
      name = await publish(id, delta, () => deltaName(nextStamp(before.maxStamp), deletes))
    } catch (error) {
      throw asStoreError(error, `record the manifest of ${id}`)
    }
    // Nobody else wrote meanwhile (we hold the lock), and our name sorts after all we read.
    const records: Loaded['records'] = [...before.records, [name, delta]]
    const state = foldRecords(records)
    const after: Loaded = {
      ...before,
      records,
      state,
      maxStamp: Math.max(before.maxStamp, parseName(name)?.stamp ?? 0),
    }
    hold.loaded = after
    if (records.length > compactAfter) {
      // Its objects change: the next update reads them again. Best effort; the next update
      // tries again.
      hold.loaded = undefined
      await compactLoaded(id, after).catch(() => undefined)
    }
    return state && structuredClone(state)
  }

  async function withLock<T>(
    uuid: string,
    task: (tx: ManifestTransaction) => Promise<T>,
    lockOptions: WithLockOptions = {},
  ): Promise<T> {
    const id = parseUuid(uuid)
    const run = async (hold: Hold) => {
      let current: PatchManifest | undefined
      try {
        hold.loaded ??= await load(id)
        current = hold.loaded.state && structuredClone(hold.loaded.state)
      } catch (error) {
        throw asStoreError(error, `read the manifest of ${id}`)
      }
      return task({
        get current() {
          return current
        },
        async update(fn) {
          current = await write(id, fn, hold)
          return current
        },
        async verify() {
          hold.held.verify()
        },
      })
    }
    const inside = holding.getStore()
    // Already held by the task this call comes from (its updates, or a nested call).
    if (inside?.uuid === id) return run(inside)
    if (lockOptions.ifFree && queue.has(id)) {
      throw new PatchBackupError(
        'PATCH_BUSY',
        `Patch ${id} is being written by another call; it was left alone. Retry when it is done.`,
      )
    }
    // One task per patch at a time in this process: they queue here rather than poll the bucket.
    return queue.run(id, async () => {
      let held: HeldPatchLock
      try {
        held = await locks.acquire(id, !lockOptions.ifFree)
      } catch (error) {
        throw asStoreError(error, `lock patch ${id}`)
      }
      const hold: Hold = { uuid: id, held }
      try {
        return await holding.run(hold, () => run(hold))
      } finally {
        await held.release()
      }
    })
  }

  function update(uuid: string, fn: ManifestUpdater): Promise<PatchManifest | undefined> {
    return withLock(uuid, (tx) => tx.update(fn))
  }

  return {
    bucket: options.bucket,
    root,
    withLock,

    async get(uuid) {
      const id = parseUuid(uuid)
      try {
        return (await load(id)).state
      } catch (error) {
        throw asStoreError(error, `read the manifest of ${id}`)
      }
    },

    update,

    async delete(uuid) {
      let existed = false
      await update(uuid, (current) => {
        existed = current !== undefined
        return undefined
      })
      return existed
    },

    async list() {
      // One listing of every manifest object, a page of 1000 per request: never a request per patch.
      const last = new Map<string, string>()
      try {
        for await (const full of bucket.list(root)) {
          const rest = full.slice(root.length)
          const slash = rest.indexOf('/')
          if (slash <= 0) continue
          const uuid = rest.slice(0, slash)
          const name = rest.slice(slash + 1)
          if (!isValidUuid(uuid) || !parseName(name)) continue
          const seen = last.get(uuid)
          if (seen === undefined || name > seen) last.set(uuid, name)
        }
      } catch (error) {
        throw asStoreError(error, 'list the manifests')
      }
      return [...last]
        .filter(([, name]) => !endsDeleted(name))
        .map(([uuid]) => uuid)
        .sort()
    },

    async compact(uuid) {
      const total: CompactResult = { removed: 0, written: 0 }
      let ids: string[]
      try {
        if (uuid !== undefined) ids = [parseUuid(uuid)]
        else {
          const all = new Set<string>()
          for await (const full of bucket.list(root)) {
            const id = full.slice(root.length).split('/')[0] ?? ''
            if (isValidUuid(id)) all.add(id)
          }
          ids = [...all].sort()
        }
        for (const id of ids) {
          const done = await queue.run(id, async () => compactLoaded(id, await load(id)))
          total.removed += done.removed
          total.written += done.written
        }
      } catch (error) {
        throw asStoreError(error, 'compact the manifests')
      }
      return total
    },
  }
}
