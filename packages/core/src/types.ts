import type { Readable } from 'node:stream'

/** One backed-up file as recorded in a patch manifest. Extra fields are kept as they are. */
export interface BackupInfo {
  /** `sha256-<base64>` of the original bytes. */
  integrity: string
  /** Size of the original bytes. */
  size: number
  backedUpAt: string
  originalPath: string
  /** File mode (permission bits) at backup time; restored with the bytes. */
  mode?: number
  /** Bytes the store keeps for this file when a decorator changed them (compressed, encrypted). */
  storedSize?: number
  /**
   * Hard links the file had at backup time, when more than one (pnpm's store links files into
   * projects): a patch that writes it in place writes into every link. Restores make a new inode.
   */
  links?: number
  /** The backup gave the file its own copy (`breakLinks`): it no longer shares the `links`. */
  linksBroken?: boolean
  [extra: string]: unknown
}

export interface PatchManifest {
  uuid: string
  patchedAt: string
  files: Record<string, BackupInfo>
  [extra: string]: unknown
}

export interface PutResult {
  integrity: string
  size: number
  /** Bytes actually stored, when a store decorator changed them (compression, encryption). */
  storedSize?: number
}

/** Content-addressed bytes under string keys. */
export interface BackupStore {
  /** Stores the bytes under `key`; identical bytes are stored once. */
  put(key: string, data: Readable | Uint8Array): Promise<PutResult>
  /**
   * Opens the bytes with this integrity, or `undefined` when the store does not have them.
   * The stream errors with `INTEGRITY_MISMATCH` if the bytes read do not hash to `integrity`.
   */
  open(key: string, integrity: string): Promise<Readable | undefined>
  /**
   * `true` when `open`'s stream checks every byte against the integrity asked for (as the stores
   * of @patch-backup/* do): a restore then hashes the bytes once, not twice. Leave it unset and the
   * service verifies what `open` gives on its own.
   */
  readonly verifiesReads?: boolean
  /**
   * Optional, synchronous: the bytes with this integrity, checked against it (INTEGRITY_MISMATCH
   * otherwise), when the store holds them as they are and they are at most `maxBytes`. `undefined`
   * means "use `open`" (too large, not there, stored encoded, or not loaded yet), never "missing".
   * Restores of small files use it to skip a stream's thread-pool round trips.
   */
  readWhole?(key: string, integrity: string, maxBytes: number): Buffer | undefined
  has(key: string): Promise<boolean>
  /**
   * Opens whatever bytes `key` holds now, checked against the store's own record of them
   * (the stream errors with `INTEGRITY_MISMATCH` on bad bytes), or `undefined` when the key or
   * its bytes are gone. The store decorators (`withCompression`, `withEncryption`) need it from
   * the store they wrap: the integrity the service asks for is that of the original bytes.
   */
  openKey?(key: string): Promise<Readable | undefined>
  /**
   * Forgets `key`. With `freeContent`, also frees its bytes when no other key references them
   * and `stillNeeded` (if given) does not claim them. Resolves `false` when the key was not there.
   */
  remove(key: string, opts?: RemoveOptions): Promise<boolean>
  /** Every key that starts with `prefix`. */
  keys?(prefix: string): AsyncIterable<string>
  /**
   * Removes the scratch files of writers that died mid-`put` (killed processes on this host). A
   * restore calls it before it starts, so a killed restore's partial snapshots do not wait for gc.
   */
  removeDeadScratch?(): Promise<number>
  /** Frees bytes that no key references any more (left by crashes or overwrites), unless `stillNeeded` claims them. */
  collectGarbage?(opts?: {
    stillNeeded?: StillNeeded
  }): Promise<{ removedBlobs: number; freedBytes: number }>
}

/**
 * Asked by a store before it frees bytes that no key references any more: `true` keeps them.
 * The service answers from the manifests, which stay the truth when a key no longer points at the
 * bytes a manifest records (an `overwrite` backup whose manifest write failed or was killed).
 */
export type StillNeeded = (integrity: string) => boolean | Promise<boolean>

export interface RemoveOptions {
  /** Also free the key's bytes when no other key references them. */
  freeContent?: boolean
  stillNeeded?: StillNeeded
}

/**
 * Returns the next manifest from the current one, without changing `current`: inside
 * `withLock`, the JSON repository hands in a frozen object it keeps (`update` hands in a copy).
 */
export type ManifestUpdater = (current: PatchManifest | undefined) => PatchManifest | undefined

export interface ManifestRepository {
  get(uuid: string): Promise<PatchManifest | undefined>
  /**
   * Atomic read-modify-write: `fn` sees the current manifest and returns the next one;
   * returning `undefined` deletes it. No concurrent update, in this process or another, is lost.
   */
  update(uuid: string, fn: ManifestUpdater): Promise<PatchManifest | undefined>
  delete(uuid: string): Promise<boolean>
  list(): Promise<string[]>
  /**
   * Runs `task` holding the cross-process lock of `uuid`: no other update or locked task of that
   * patch, in this process or another, runs meanwhile. The service puts a patch's store keys and
   * removes them only inside it, so what it checks there stays true until it has recorded the
   * result (see docs/reliability.md). `task` must not call `update` or `withLock` on the same uuid.
   * A repository that cannot lock across processes leaves it out; the service then uses `update`.
   */
  withLock?<T>(
    uuid: string,
    task: (tx: ManifestTransaction) => Promise<T>,
    options?: WithLockOptions,
  ): Promise<T>
}

export interface WithLockOptions {
  /**
   * Do not wait: reject with `PATCH_BUSY` at once if the lock is held (here or in another
   * process). Maintenance that runs inside another patch's lock (quota pruning) uses it, so two
   * processes never wait on each other's locks crosswise.
   */
  ifFree?: boolean
}

/** The manifest of one patch, held under its lock (see `ManifestRepository.withLock`). */
export interface ManifestTransaction {
  /** The manifest as it is now: read when the lock was taken, then as the task wrote it. */
  readonly current: PatchManifest | undefined
  /** Writes `fn(current)` (`undefined` deletes the manifest) and resolves what was written. */
  update(fn: ManifestUpdater): Promise<PatchManifest | undefined>
  /**
   * Optional: the entry of `file` (what `current?.files[file]` gives) without building the whole
   * manifest. The service uses it, when present, to back up one file in time that does not grow
   * with the patch.
   */
  entry?(file: string): BackupInfo | undefined
  /**
   * Optional: records backed-up files under their `originalPath`, as `update` with this updater
   * would: a file that has an entry keeps it unless `overwrite`; with no manifest, `init()` is the
   * manifest the entries go into. A repository that keeps the manifest's text can append to it
   * instead of rewriting it from objects (the JSON repository does).
   */
  record?(
    entries: readonly BackupInfo[],
    options: { overwrite: boolean; init: () => PatchManifest },
  ): Promise<void>
  /**
   * Rejects (`LOCK_COMPROMISED`) if the lock was lost meanwhile: this process stalled past the
   * lock's lease and another took it over. The service calls it before each key it removes.
   */
  verify(): Promise<void>
}

export interface FileError {
  path: string
  code: string
  message: string
}

export interface CreateBackupOptions {
  /** Replace an existing backup of the file with its current bytes. Default: keep the first. */
  overwrite?: boolean
  /**
   * Give a file with other hard links (a pnpm store's) its own copy before backing it up (copy to
   * a temp beside it, then rename), so a patch writing it in place cannot write into the others.
   */
  breakLinks?: boolean
}

export interface CreateBackupsResult {
  /** Paths backed up (or already backed up), in input order. */
  backedUp: string[]
  failed: string[]
  errors: FileError[]
  files: Record<string, BackupInfo>
}

export interface RestoreAllResult {
  restored: string[]
  failed: string[]
  errors: FileError[]
  /** Atomic restores only: a rename failed and every replaced target was put back. */
  rolledBack?: boolean
  /** Atomic restores only: of `restored`, the files that already held their backup (left as they were). */
  unchanged?: string[]
}

export interface RecordPatchedResult {
  recorded: string[]
  failed: string[]
  errors: FileError[]
}

export interface UndoResult {
  undone: string[]
  failed: string[]
  errors: FileError[]
}

export interface VerifyProblem {
  uuid: string
  /** The file, when the problem is one file's backup rather than the whole manifest. */
  path?: string
  /** The integrity that was checked, when the problem is one file's backup. */
  integrity?: string
  code: string
  message: string
}

export interface VerifyReport {
  patches: number
  files: number
  ok: number
  problems: VerifyProblem[]
}

export interface RepairReport extends VerifyReport {
  /** Manifest entries dropped because their bytes were gone or corrupt. */
  dropped: VerifyProblem[]
}

export interface GcReport {
  removedKeys: number
  removedBlobs: number
  freedBytes: number
}
