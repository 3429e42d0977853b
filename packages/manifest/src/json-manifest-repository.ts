import { unlinkSync } from 'node:fs'
import { mkdir, readdir, unlink } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import {
  breathe,
  KeyedQueue,
  type ManifestRepository,
  type ManifestTransaction,
  type ManifestUpdater,
  PatchBackupError,
  type PatchManifest,
  parseUuid,
  type WithLockOptions,
} from '@patch-backup/core'
import {
  SYNC_WRITE_BYTES,
  unwritable,
  writeFileAtomic,
  writeFileAtomicSync,
} from './atomic-write.js'
import { forget, readKnownManifest, remember } from './known-manifests.js'
import {
  acquireLock,
  DEFAULT_LOCK_STALE_MS,
  DEFAULT_LOCK_TIMEOUT_MS,
  type HeldLock,
  MIN_LOCK_STALE_MS,
} from './lock.js'
import { keepOrRelease, monotonicMs, takeKept, waitTurn } from './lock-keeper.js'
import { ManifestDocument } from './manifest-document.js'
import {
  isDeadTempFile,
  lockFileName,
  manifestFileName,
  readManifest,
  uuidOfFileName,
} from './manifest-file.js'

export interface JsonManifestRepositoryOptions {
  /** The manifests directory, e.g. `~/.socket/_patches/manifests`. Created on the first write. */
  dir: string
  /**
   * A lock whose holder stopped refreshing it (killed, crashed) for this long is taken over.
   * Default 5000 ms; proper-lockfile's minimum is 2000 ms. Every process sharing the directory
   * should use the same value.
   */
  lockStaleMs?: number
  /** How long `update` and `delete` wait for a lock held by a live process. Default 30000 ms. */
  lockTimeoutMs?: number
}

export interface JsonManifestRepository extends ManifestRepository {
  withLock<T>(
    uuid: string,
    task: (tx: ManifestTransaction) => Promise<T>,
    options?: WithLockOptions,
  ): Promise<T>
  /** The absolute manifests directory. */
  readonly dir: string
  /** Where the manifest of `uuid` lives (whether or not it exists). */
  manifestPath(uuid: string): string
  /** The lock directory taken while `uuid` is updated or deleted. */
  lockPath(uuid: string): string
}

/**
 * In-process serialization, keyed by absolute manifest path and shared by every repository in
 * this module instance: two repositories on one directory then queue rather than poll, and
 * proper-lockfile (which tracks held locks per file, per process) never sees the same file twice.
 */
const queue = new KeyedQueue()

function positive(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new PatchBackupError(
      'INVALID_OPTIONS',
      `${name} must be a non-negative number of milliseconds, got ${String(value)}.`,
    )
  }
  return value
}

/** A `ManifestRepository` keeping one `<uuid>.json` per patch, in the seed's format. */
export function createJsonManifestRepository(
  options: JsonManifestRepositoryOptions,
): JsonManifestRepository {
  if (typeof options?.dir !== 'string' || options.dir === '') {
    throw new PatchBackupError('INVALID_OPTIONS', 'createJsonManifestRepository needs a `dir`.')
  }
  const dir = resolve(options.dir)
  const staleMs = Math.max(
    positive('lockStaleMs', options.lockStaleMs, DEFAULT_LOCK_STALE_MS),
    MIN_LOCK_STALE_MS,
  )
  const timeoutMs = positive('lockTimeoutMs', options.lockTimeoutMs, DEFAULT_LOCK_TIMEOUT_MS)

  const manifestPath = (uuid: string) => join(dir, manifestFileName(uuid))
  const lockPath = (uuid: string) => join(dir, lockFileName(uuid))

  /**
   * Locks `uuid` across processes. The directory is created only when the lock's mkdir says
   * it is missing, so the common path costs no extra syscall; `undefined` when it is missing
   * and `createDir` is false (nothing to delete).
   */
  async function lock(
    uuid: string,
    createDir: boolean,
    wait = true,
  ): Promise<HeldLock | undefined> {
    const request = {
      target: manifestPath(uuid),
      lockPath: lockPath(uuid),
      staleMs,
      timeoutMs: wait ? timeoutMs : 0,
    }
    try {
      return await acquireLock(request)
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT')
        throw lockError(request.lockPath, error)
      if (!createDir) return undefined
    }
    try {
      await mkdir(dir, { recursive: true })
      return await acquireLock(request)
    } catch (error) {
      throw lockError(request.lockPath, error)
    }
  }

  function lockError(path: string, error: unknown): PatchBackupError {
    if (error instanceof PatchBackupError) return error
    return unwritable(path, 'lock', error)
  }

  async function locked<T>(
    uuid: string,
    createDir: boolean,
    missing: T,
    task: (held: HeldLock) => Promise<T>,
    wait = true,
  ): Promise<T> {
    const path = lockPath(uuid)
    let taken = takeKept(path)
    if (taken === undefined) {
      await waitTurn(path)
      let held: HeldLock | undefined
      try {
        held = await lock(uuid, createDir, wait)
      } catch (error) {
        if (!wait && (error as PatchBackupError).code === 'LOCK_TIMEOUT') throw busy(uuid)
        throw error
      }
      if (held === undefined) return missing
      taken = { held, since: monotonicMs() }
    }
    try {
      return await task(taken.held)
    } finally {
      await keepOrRelease(path, taken)
      // The lock's calls are synchronous: a loop of awaited calls must still let the event loop turn.
      await breathe()
    }
  }

  const repository: JsonManifestRepository = {
    dir,
    manifestPath: (uuid) => manifestPath(parseUuid(uuid)),
    lockPath: (uuid) => lockPath(parseUuid(uuid)),

    async get(uuid) {
      const id = parseUuid(uuid)
      // No lock: manifests are replaced by rename, so a reader sees a whole old or new file.
      return readManifest(manifestPath(id), id)
    },

    async withLock<T>(
      uuid: string,
      task: (tx: ManifestTransaction) => Promise<T>,
      options: WithLockOptions = {},
    ): Promise<T> {
      const id = parseUuid(uuid)
      const path = manifestPath(id)
      if (options.ifFree && queue.has(path)) throw busy(id)
      return queue.run(path, () =>
        locked(
          id,
          true,
          undefined as T,
          async (held) => {
            // A corrupt file throws here: nothing may overwrite what it could not see.
            let document = readKnownManifest(path, id)
            const write = async (next: ManifestDocument) => {
              const chunks = next.chunks()
              const size = chunks.reduce((sum, chunk) => sum + chunk.length, 0)
              if (size <= SYNC_WRITE_BYTES) {
                writeFileAtomicSync(dir, id, path, chunks, held.verifySync)
              } else await writeFileAtomic(dir, id, path, next.text, () => held.verify())
              remember(path, size, next)
              document = next
            }
            return task({
              get current() {
                return document?.manifest
              },
              entry: (file) => document?.entry(file),
              async record(entries, { overwrite, init }) {
                const base = document ?? ManifestDocument.from(init(), id, path)
                const next = base.withEntries(entries, overwrite, path)
                if (next) await write(next)
                else if (!document) await write(base)
              },
              async update(fn) {
                const current = document?.manifest
                const next = fn(current)
                if (next === current) return current
                if (next === undefined) {
                  held.verifySync()
                  forget(path)
                  removeFileSync(path)
                  document = undefined
                  return undefined
                }
                const nextDocument = ManifestDocument.from(next, id, path)
                // The same text (fn returned its copy unchanged): nothing to write.
                if (document?.matches(Buffer.concat(nextDocument.chunks()))) return current
                await write(nextDocument)
                return nextDocument.manifest
              },
              verify: () => held.verify(),
            })
          },
          !options.ifFree,
        ),
      )
    },

    async update(uuid: string, fn: ManifestUpdater): Promise<PatchManifest | undefined> {
      // Inside a transaction `current` is frozen (see withLock); here fn gets a copy it may
      // change, and the caller an object it does not share with anyone.
      const next = await repository.withLock(uuid, (tx) =>
        tx.update((current) => fn(current && structuredClone(current))),
      )
      return next && structuredClone(next)
    },

    async delete(uuid) {
      const id = parseUuid(uuid)
      const path = manifestPath(id)
      return queue.run(path, () =>
        locked(id, false, false, async (held) => {
          await held.verify()
          forget(path)
          return removeFile(path)
        }),
      )
    },

    async list() {
      let names: string[]
      try {
        names = await readdir(dir)
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code
        if (code === 'ENOENT') return []
        throw new PatchBackupError(
          'MANIFEST_UNREADABLE',
          `Cannot list the patch manifests in ${dir}: ${(error as Error).message}. Check that it is a directory this user can read.`,
          { path: dir, cause: error },
        )
      }
      const uuids: string[] = []
      for (const name of names) {
        const uuid = uuidOfFileName(name)
        if (uuid !== undefined) uuids.push(uuid)
        // Listing already paid for the directory read: a killed write's temp file goes now.
        else if (isDeadTempFile(name)) await unlink(join(dir, name)).catch(() => {})
      }
      return uuids.sort()
    },
  }
  return repository
}

function busy(uuid: string): PatchBackupError {
  return new PatchBackupError(
    'PATCH_BUSY',
    `Patch ${uuid} is being written by another call; it was left alone. Retry when it is done.`,
  )
}

/** `removeFile` with one synchronous `unlink`. */
function removeFileSync(path: string): boolean {
  try {
    unlinkSync(path)
    return true
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false
    throw unwritable(path, 'delete', error)
  }
}

/** Deletes a manifest; `false` when there was none. */
async function removeFile(path: string): Promise<boolean> {
  try {
    await unlink(path)
    return true
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false
    throw unwritable(path, 'delete', error)
  }
}
