// The service: the public API, uuids and paths checked at the edge, one queue turn per patch.
// It must not parse config or read the environment, nor name a store key itself (store-keys/ does).

import { constants } from 'node:fs'
import { open } from 'node:fs/promises'
import path from 'node:path'
import pMap from 'p-map'
import { breathe } from '../breathe.js'
import { asStoreError, PatchBackupError } from '../errors.js'
import { createFilePaths, type FilePathOptions, type ProjectFile } from '../file-path.js'
import { KeyedQueue } from '../keyed-queue.js'
import { createMaintenance, type Maintenance } from '../maintenance/maintenance.js'
import { removePatch } from '../maintenance/remove-patch.js'
import { lockPatch } from '../patch-lock.js'
import type { StorageLimits } from '../policies/limits.js'
import type { PruneOptions, PruneResult } from '../policies/prune.js'
import type { RetentionPolicy } from '../policies/retention.js'
import { journalOf, restoreInProgress, type Snapshot } from '../restore/journal.js'
import { writeAtomically } from '../restore/safe-target.js'
import {
  createRestoreTransactions,
  type FileStatus,
  type RecoverResult,
  type RestoreAllOptions,
  type RestoreOptions,
  toFileError,
} from '../restore/transaction.js'
import { backupKey } from '../store-keys/layout.js'
import { pinRecorded, unpin } from '../store-keys/pins.js'
import type {
  BackupInfo,
  BackupStore,
  CreateBackupOptions,
  CreateBackupsResult,
  FileError,
  ManifestRepository,
  ManifestTransaction,
  PatchManifest,
  RecordPatchedResult,
  RestoreAllResult,
  UndoResult,
} from '../types.js'
import { type PatchUuid, parseUuid } from '../uuid.js'

/** Looks up the entry a manifest records for a file key. */
type Recorded = (key: string) => BackupInfo | undefined

import { createConfinement } from './confinement.js'
import { createServicePolicies } from './policies.js'
import { readSmall, readSmallSync, SMALL_FILE_BYTES, unreadable } from './source-file.js'

/**
 * Paths (see `FilePathOptions`): without `projectRoot`, any absolute path is taken as it is and a
 * relative one resolves against `cwd` (default `process.cwd()` at each call), as the seed did. With
 * `projectRoot`, the service is confined to it: see docs/reliability.md for what holds either way.
 */
export interface PatchBackupsOptions extends FilePathOptions {
  store: BackupStore
  manifests: ManifestRepository
  now?: () => Date
  /** Files read or written at once by batch calls. Default 8. */
  concurrency?: number
  /** Size caps checked before a file is stored; `QUOTA_EXCEEDED` when crossed (see policies/limits.ts). */
  limits?: StorageLimits
  /** Automatic retention: this prune policy runs after backups, at most once per `intervalMs`. */
  retention?: RetentionPolicy
  /**
   * Give restored files the setuid, setgid and sticky bits their recorded mode has. Default false:
   * a manifest anyone who can write the backup root may edit never makes a setuid file.
   */
  allowSpecialModeBits?: boolean
}

export interface PatchBackups extends Maintenance {
  createBackup(uuid: string, filePath: string, options?: CreateBackupOptions): Promise<BackupInfo>
  createBackups(
    uuid: string,
    filePaths: readonly string[],
    options?: CreateBackupOptions,
  ): Promise<CreateBackupsResult>
  /** Restores one file; with recorded patched bytes, refuses a drifted file (`DRIFTED`) unless `force`. */
  restoreBackup(uuid: string, filePath: string, options?: RestoreOptions): Promise<boolean>
  /** Every file of the patch; `{ atomic: true }` makes it all or nothing. */
  restoreAllBackups(uuid: string, options?: RestoreAllOptions): Promise<RestoreAllResult>
  /** Each file as original / patched / drifted / modified / missing; `undefined` for an unknown patch. */
  status(uuid: string): Promise<FileStatus[] | undefined>
  /** Records the current (just patched) bytes of the files, so drift can be told from the patch. */
  recordPatched(
    uuid: string,
    filePaths?: readonly string[],
  ): Promise<RecordPatchedResult | undefined>
  /** Puts back what the last atomic or forced restore replaced. */
  undoRestore(uuid: string): Promise<UndoResult>
  /**
   * Finishes or undoes a restore a crash interrupted; `undefined` when none was in flight. A
   * restore whose process is alive is left alone (`RESTORE_IN_PROGRESS`) unless `force`: for a
   * journal whose process id was reused by another process, when no restore of the patch runs.
   */
  recover(uuid: string, opts?: { force?: boolean }): Promise<RecoverResult | undefined>
  listBackups(uuid: string): Promise<string[] | undefined>
  getBackupInfo(uuid: string, filePath: string): Promise<BackupInfo | undefined>
  getPatchMetadata(uuid: string): Promise<PatchManifest | undefined>
  hasBackup(uuid: string, filePath: string): Promise<boolean>
  listAllPatches(): Promise<string[]>
  cleanupBackups(uuid: string): Promise<boolean>
  /** Removes the oldest patches by age, size or count, and frees the bytes only they used. */
  prune(options: PruneOptions): Promise<PruneResult>
}

// Measured on the 2-core CI machine, 1,000 x 4 KiB: restore-all took 2.3 s at 1, 1.3 s at 8 and
// 1.1 s at 32; batch backup 1.7 s at 1 and ~1.3 s from 8 up. Past 8 the libuv pool (4 threads)
// is the limit, so more only adds open files.
export const DEFAULT_CONCURRENCY = 8

/** A store failure while backing up `file`: names the file; the store's own message says where it writes. */
function storeFailed(file: ProjectFile, error: unknown): PatchBackupError {
  const wrapped = asStoreError(error, `store ${file.key}`)
  if (wrapped.code !== 'STORE_ERROR' || wrapped.path !== undefined) return wrapped
  return new PatchBackupError(
    'STORE_ERROR',
    `Cannot back up ${file.absolute}. ${wrapped.message}`,
    {
      cause: wrapped.cause ?? error,
      path: file.key,
    },
  )
}

export function createPatchBackups(options: PatchBackupsOptions): PatchBackups {
  const { store, manifests } = options
  const paths = createFilePaths(options)
  const confinement = createConfinement(paths)
  const now = options.now ?? (() => new Date())
  const concurrency = Math.max(1, options.concurrency ?? DEFAULT_CONCURRENCY)
  if (!store || !manifests) {
    throw new PatchBackupError(
      'INVALID_OPTIONS',
      'createPatchBackups needs both a store and a manifests repository.',
    )
  }
  // Mutations of one patch run one at a time in this process; the repository locks across processes.
  const patchQueue = new KeyedQueue()
  const policies = createServicePolicies({
    ...options,
    store,
    manifests,
    now,
    concurrency,
    queue: patchQueue,
  })

  /**
   * Reads the file into the store and describes it; writes nothing to the manifest. `beforePut`
   * runs once the source is open and the quota allows it, just before the key can move.
   */
  async function storeFile(
    uuid: PatchUuid,
    file: ProjectFile,
    beforePut?: () => Promise<void>,
    breakLinks = false,
  ): Promise<BackupInfo> {
    try {
      await confinement.checkSource(file)
    } catch (error) {
      if (error instanceof PatchBackupError) throw error
      throw unreadable(file, error)
    }
    await breathe()
    const small = readSmallSync(file, breakLinks)
    if (small) return storeSource(uuid, file, small.info, small.data, beforePut)
    return storeThroughHandle(uuid, file, beforePut, breakLinks)
  }

  /** `storeFile` for a large file, or one whose hard links are broken first. */
  async function storeThroughHandle(
    uuid: PatchUuid,
    file: ProjectFile,
    beforePut: (() => Promise<void>) | undefined,
    breakLinks: boolean,
  ): Promise<BackupInfo> {
    let handle: Awaited<ReturnType<typeof open>>
    try {
      handle = await open(file.absolute, constants.O_RDONLY)
    } catch (error) {
      throw unreadable(file, error)
    }
    try {
      const info = await handle.stat()
      if (!info.isFile()) throw unreadable(file, new Error('not a regular file'))
      let linksBroken = false
      if (breakLinks && info.nlink > 1) {
        // The bytes the open handle reads, into a new inode renamed over the name: the other links
        // keep the old inode, and the backup below reads the same bytes.
        try {
          await writeAtomically(
            file.absolute,
            async () => handle.createReadStream({ start: 0, autoClose: false }),
            info.mode & 0o7777,
          )
        } catch (error) {
          throw new PatchBackupError(
            'TARGET_UNWRITABLE',
            `Cannot give ${file.absolute} its own copy to break its ${info.nlink} hard links (${(error as NodeJS.ErrnoException)?.code ?? String(error)}). Check the permissions of its directory; the file was left as it was.`,
            { cause: error, path: file.key },
          )
        }
        linksBroken = true
      }
      let small: Buffer | undefined
      let readError: unknown
      try {
        small = info.size <= SMALL_FILE_BYTES ? await readSmall(handle, info.size) : undefined
      } catch (error) {
        throw unreadable(file, error)
      }
      let source: Buffer | ReturnType<typeof handle.createReadStream>
      if (small) source = small
      else {
        // 1 MiB chunks: a sixteenth of the default's round trips through the hash and the store.
        source = handle.createReadStream({ autoClose: false, highWaterMark: 1024 * 1024 })
        source.on('error', (error) => {
          readError = error
        })
      }
      return await storeSource(uuid, file, info, source, beforePut, linksBroken, () => readError)
    } finally {
      await handle.close()
    }
  }

  /**
   * Puts `source` (the file's bytes, read with `info`) under the file's key, within the quota, and
   * describes it; writes nothing to the manifest. `beforePut` runs once the quota allows the write,
   * just before the key can move.
   */
  async function storeSource(
    uuid: PatchUuid,
    file: ProjectFile,
    info: { size: number; mode: number; nlink: number },
    source: Parameters<BackupStore['put']>[1],
    beforePut: (() => Promise<void>) | undefined,
    linksBroken = false,
    readError: () => unknown = () => undefined,
  ): Promise<BackupInfo> {
    const room = await policies.quota?.reserve(uuid, file.key, info.size)
    let stored: { integrity: string; size: number; storedSize?: number }
    try {
      await beforePut?.()
      stored = await store.put(backupKey(uuid, file.key), source)
    } catch (error) {
      room?.release()
      if (readError() !== undefined) throw unreadable(file, readError())
      throw storeFailed(file, error)
    }
    room?.commit(stored.integrity, stored.size, stored.storedSize)
    return {
      integrity: stored.integrity,
      size: stored.size,
      backedUpAt: now().toISOString(),
      originalPath: file.key,
      mode: info.mode & 0o7777,
      ...(stored.storedSize !== undefined && { storedSize: stored.storedSize }),
      // Other names for the same inode (a pnpm store): a patch writing in place writes into them.
      ...(info.nlink > 1 && { links: info.nlink }),
      ...(linksBroken && { linksBroken: true }),
    }
  }

  /** A new patch's manifest. A confined service records its project root, so a CLI run from anywhere finds the files of relative keys; the seed's readers ignore the extra field. */
  function newManifest(uuid: PatchUuid): PatchManifest {
    return {
      uuid,
      patchedAt: now().toISOString(),
      files: {},
      ...(paths.projectRoot !== undefined && { projectRoot: paths.projectRoot }),
    }
  }

  function withEntries(
    uuid: PatchUuid,
    current: PatchManifest | undefined,
    entries: readonly BackupInfo[],
    overwrite: boolean,
  ) {
    const base: PatchManifest = current ?? newManifest(uuid)
    const files = { ...base.files }
    let changed = current === undefined
    for (const entry of entries) {
      if (!overwrite && files[entry.originalPath]) continue
      files[entry.originalPath] = entry
      changed = true
    }
    return changed ? { ...base, files } : base
  }

  /** The entries the transaction's manifest records, looked up one by one. */
  function recordedIn(tx: ManifestTransaction): Recorded {
    const entry = tx.entry?.bind(tx)
    return entry ?? ((key) => tx.current?.files[key])
  }

  /** Records `entries` in the locked manifest; resolves what it records afterwards. */
  async function record(
    tx: ManifestTransaction,
    uuid: PatchUuid,
    entries: readonly BackupInfo[],
    overwrite: boolean,
  ): Promise<Recorded> {
    if (tx.record) {
      await tx.record(entries, { overwrite, init: () => newManifest(uuid) })
      return recordedIn(tx)
    }
    const next = await tx.update((current) => withEntries(uuid, current, entries, overwrite))
    return (key) => next?.files[key]
  }

  /**
   * The file as the manifest records it: under its key, or under its absolute path (how the seed's
   * module, and any caller without a project root, keyed it), so one file stays one entry.
   */
  function recordedFile(recorded: Recorded | undefined, file: ProjectFile): ProjectFile {
    if (!recorded || recorded(file.key)) return file
    const absolute = file.absolute.split(path.sep).join('/')
    return absolute !== file.key && recorded(absolute) ? paths.fromKey(absolute) : file
  }

  async function readManifest(uuid: PatchUuid): Promise<PatchManifest | undefined> {
    return manifests.get(uuid)
  }

  const transactions = createRestoreTransactions({
    store,
    manifests,
    paths,
    ensureParent: confinement.ensureParent,
    checkNow: confinement.checkNow,
    now,
    concurrency,
    allowSpecialModeBits: options.allowSpecialModeBits === true,
  })

  /**
   * The manifest, after finishing or undoing any restore a crash left in flight. With
   * `forWrite` (a call that writes project files), a journal still there belongs to a live
   * process's restore of these files, and writing them now would mix the two: RESTORE_IN_PROGRESS.
   */
  async function settledManifest(
    uuid: PatchUuid,
    { forWrite = false } = {},
  ): Promise<PatchManifest | undefined> {
    const manifest = await readManifest(uuid)
    if (!journalOf(manifest)) return manifest
    // In the patch's queue: a journal of this process's own is then stale, and recovered.
    return patchQueue.run(uuid, async () => {
      await transactions.recover(uuid)
      const settled = await readManifest(uuid)
      const inFlight = journalOf(settled)
      if (forWrite && inFlight) throw restoreInProgress(uuid, inFlight)
      return settled
    })
  }

  const service: PatchBackups = {
    ...createMaintenance({ store, manifests, concurrency, patchQueue }),

    async createBackup(uuid, filePath, opts = {}) {
      const id = parseUuid(uuid)
      const given = paths.resolve(filePath)
      // The store write happens under the patch's lock, so no cleanup, prune, gc or overwrite in
      // another process can remove or re-point the key between the write and the manifest's record.
      return patchQueue.run(id, () =>
        lockPatch(manifests, id, async (tx) => {
          const recorded = recordedIn(tx)
          const file = recordedFile(recorded, given)
          const existing = recorded(file.key)
          // Copies: what the repository records may be frozen, and is not the caller's to change.
          if (existing && !opts.overwrite) return { ...existing }
          let pin: string | undefined
          const entry = await storeFile(
            id,
            file,
            async () => {
              if (existing) pin = await pinRecorded(store, id, existing)
            },
            !!opts.breakLinks,
          )
          const now = await record(tx, id, [entry], !!opts.overwrite)
          if (pin) await unpin(store, [pin])
          return { ...(now(file.key) ?? entry) }
        }),
      )
    },

    async createBackups(uuid, filePaths, opts = {}) {
      const id = parseUuid(uuid)
      const errors: FileError[] = []
      const files: ProjectFile[] = []
      for (const filePath of filePaths) {
        try {
          files.push(paths.resolve(filePath))
        } catch (error) {
          errors.push(toFileError(String(filePath), error))
        }
      }
      return patchQueue.run(id, () =>
        lockPatch(manifests, id, async (tx) => {
          const recorded = recordedIn(tx)
          const existing = opts.overwrite ? () => undefined : recorded
          const pins = new Map<string, string>()
          const unique = [
            ...new Map(files.map((f) => recordedFile(recorded, f)).map((f) => [f.key, f])).values(),
          ]
          const refusal = await policies.quota?.checkBatch(
            id,
            unique.filter((f) => !existing(f.key)),
          )
          const stored = await pMap(
            unique,
            async (file) => {
              const kept = existing(file.key)
              if (kept) return kept
              if (refusal) {
                errors.push(toFileError(file.key, refusal))
                return undefined
              }
              try {
                const prior = opts.overwrite ? recorded(file.key) : undefined
                return await storeFile(
                  id,
                  file,
                  async () => {
                    const pin = prior && (await pinRecorded(store, id, prior))
                    if (pin) pins.set(file.key, pin)
                  },
                  !!opts.breakLinks,
                )
              } catch (error) {
                errors.push(toFileError(file.key, error))
                return undefined
              }
            },
            { concurrency },
          )
          const entries = stored.filter((e): e is BackupInfo => e !== undefined)
          const fresh = entries.filter((e) => existing(e.originalPath) !== e)
          const now = fresh.length > 0 ? await record(tx, id, fresh, !!opts.overwrite) : recorded
          // Only the pins of files whose new bytes the manifest now records: a file whose store
          // write failed may have had its key moved already, and its pin still holds what is recorded.
          await unpin(
            store,
            fresh
              .filter((e) => now(e.originalPath)?.integrity === e.integrity)
              .map((e) => pins.get(e.originalPath))
              .filter((pin): pin is string => pin !== undefined),
          )
          const result: CreateBackupsResult = { backedUp: [], failed: [], errors: [], files: {} }
          for (const entry of entries) {
            result.backedUp.push(entry.originalPath)
            result.files[entry.originalPath] = { ...(now(entry.originalPath) ?? entry) }
          }
          const order = new Map(filePaths.map((p, i) => [p, i]))
          result.errors = errors.sort((a, b) => (order.get(a.path) ?? 0) - (order.get(b.path) ?? 0))
          result.failed = result.errors.map((e) => e.path)
          return result
        }),
      )
    },

    async restoreBackup(uuid, filePath, opts = {}) {
      const id = parseUuid(uuid)
      const manifest = await settledManifest(id, { forWrite: true })
      const files = manifest?.files
      const file = recordedFile(files && ((key) => files[key]), paths.resolve(filePath))
      const entry = manifest?.files[file.key]
      if (!manifest || !entry) return false
      // One file: only its own directory is swept, not every directory of the patch.
      await transactions.removeLeftovers(manifest, [file.key])
      const { snapshot } = await transactions.restoreOne(id, file, entry, opts)
      if (snapshot !== undefined) await transactions.rememberSnapshots(id, { [file.key]: snapshot })
      return true
    },

    async restoreAllBackups(uuid, opts = {}) {
      const id = parseUuid(uuid)
      const result: RestoreAllResult = { restored: [], failed: [], errors: [] }
      const manifest = await settledManifest(id, { forWrite: true })
      if (!manifest) return result
      await transactions.removeLeftovers(manifest)
      if (opts.atomic)
        return patchQueue.run(id, () => transactions.restoreAtomic(id, manifest, opts))
      const keys = Object.keys(manifest.files).sort()
      const kept: Record<string, Snapshot | null> = {}
      const outcomes = await pMap(
        keys,
        async (key) => {
          try {
            const entry = manifest.files[key] as BackupInfo
            const { snapshot } = await transactions.restoreOne(id, paths.fromKey(key), entry, opts)
            if (snapshot !== undefined) kept[key] = snapshot
            return undefined
          } catch (error) {
            return toFileError(key, error)
          }
        },
        { concurrency },
      )
      await transactions.rememberSnapshots(id, kept)
      keys.forEach((key, i) => {
        const error = outcomes[i]
        if (error) {
          result.failed.push(key)
          result.errors.push(error)
        } else result.restored.push(key)
      })
      return result
    },

    async status(uuid) {
      const manifest = await settledManifest(parseUuid(uuid))
      return manifest ? transactions.status(manifest) : undefined
    },

    async recordPatched(uuid, filePaths) {
      const id = parseUuid(uuid)
      await settledManifest(id)
      return patchQueue.run(id, async () => {
        const manifest = await readManifest(id)
        if (!manifest) return undefined
        const { done, failed, errors } = await transactions.recordPatched(id, manifest, filePaths)
        return { recorded: done, failed, errors }
      })
    },

    async undoRestore(uuid) {
      const id = parseUuid(uuid)
      const manifest = await settledManifest(id, { forWrite: true })
      if (manifest) await transactions.removeLeftovers(manifest)
      return patchQueue.run(id, async () => {
        const { done, failed, errors } = await transactions.undo(id)
        return { undone: done, failed, errors }
      })
    },

    async recover(uuid, opts = {}) {
      const id = parseUuid(uuid)
      return patchQueue.run(id, async () => {
        const manifest = await readManifest(id)
        const result = await transactions.recover(id, manifest, true, opts.force === true)
        if (manifest) await transactions.removeLeftovers(manifest)
        return result
      })
    },

    async listBackups(uuid) {
      const manifest = await readManifest(parseUuid(uuid))
      return manifest ? Object.keys(manifest.files).sort() : undefined
    },

    async getBackupInfo(uuid, filePath) {
      const id = parseUuid(uuid)
      const files = (await readManifest(id))?.files
      return files?.[recordedFile(files && ((key) => files[key]), paths.resolve(filePath)).key]
    },

    async getPatchMetadata(uuid) {
      return readManifest(parseUuid(uuid))
    },

    async hasBackup(uuid, filePath) {
      return (await service.getBackupInfo(uuid, filePath)) !== undefined
    },

    async listAllPatches() {
      return [...(await manifests.list())].sort()
    },

    prune: (pruneOptions) => policies.prune(pruneOptions),

    async cleanupBackups(uuid) {
      const id = parseUuid(uuid)
      return patchQueue.run(id, async () => {
        const { removed, failures } = await removePatch({ store, manifests, concurrency }, id)
        if (!removed) return false
        policies.quota?.forget(id)
        if (failures.length > 0) {
          throw new PatchBackupError(
            'STORE_ERROR',
            `Patch ${id} was removed, but the store could not free ${failures.length} file(s): ${failures.join('; ')}. Run 'patch-backup gc' to reclaim the space.`,
          )
        }
        return true
      })
    },
  }
  return policies.wrap(service)
}
