import { PatchBackupError } from '../errors.js'
import { backupKey, patchKeyPrefix, snapshotKey } from '../store-keys/layout.js'
import type { PatchManifest } from '../types.js'
import { isOtherProcess, type ProcessIdentity } from './process-identity.js'
import { isDeadProcess } from './safe-target.js'

/** What a file held before a restore replaced it; `null` when there was no file. */
export interface Snapshot {
  integrity: string
  size: number
  mode: number
  /** The store key holding these bytes (older manifests: `snapshotKey(uuid, path)`). */
  key?: string
  /** The target was this symlink (kept as a link, never read through; no bytes stored). */
  symlink?: string
  /** The bytes are a slice of the blob `key` holds (a pack of several snapshots). */
  pack?: SnapshotPack
}

/** Where a packed snapshot lies: `Snapshot.size` bytes from `offset` in the pack. */
export interface SnapshotPack {
  /** The whole pack's integrity and size, to read it from the store. */
  integrity: string
  size: number
  offset: number
}

export interface JournalFile {
  /** Temp file beside the target, relative to the project root (posix separators). */
  temp: string
  previous: Snapshot | null
}

/**
 * An all-or-nothing restore in flight, kept in the patch manifest (whose writes are atomic and
 * locked), so a crash at any point leaves enough to finish or undo it:
 * - `staging`: temp files are being written; recovery deletes them (targets untouched);
 * - `committing`: every temp is complete and verified; recovery renames the rest into place;
 * - `rolling-back`: a rename failed; recovery puts every target back from its snapshot.
 */
export interface RestoreJournal {
  id: string
  phase: 'staging' | 'committing' | 'rolling-back'
  startedAt: string
  /** Who runs it: a journal whose owner is still alive is a restore in progress, not a crash. */
  owner?: { pid: number; host: string } & ProcessIdentity
  files: Record<string, JournalFile>
}

export interface LastRestore {
  at: string
  files: Record<string, Snapshot | null>
}

export function journalOf(manifest: PatchManifest | undefined): RestoreJournal | undefined {
  const journal = manifest?.restoreJournal as RestoreJournal | undefined
  return journal && typeof journal === 'object' && typeof journal.files === 'object'
    ? journal
    : undefined
}

export function lastRestoreOf(manifest: PatchManifest | undefined): LastRestore | undefined {
  const last = manifest?.lastRestore as LastRestore | undefined
  return last && typeof last === 'object' && typeof last.files === 'object' ? last : undefined
}

export function withoutJournal(manifest: PatchManifest): PatchManifest {
  const { restoreJournal: _journal, ...rest } = manifest
  return rest as PatchManifest
}

/** Every store key a manifest keeps alive: its backups, and the snapshots of its last or pending restore. */
export function storeKeysOf(uuid: string, manifest: PatchManifest | undefined): string[] {
  if (!manifest) return []
  const keys = Object.keys(manifest.files).map((path) => backupKey(uuid, path))
  const snapshots = new Set<string>()
  for (const [path, snapshot] of Object.entries(lastRestoreOf(manifest)?.files ?? {})) {
    if (snapshot && snapshot.symlink === undefined)
      snapshots.add(snapshotStoreKey(uuid, path, snapshot))
  }
  for (const [path, file] of Object.entries(journalOf(manifest)?.files ?? {})) {
    if (file.previous && file.previous.symlink === undefined)
      snapshots.add(snapshotStoreKey(uuid, path, file.previous))
  }
  keys.push(...snapshots)
  return keys
}

/** The key a snapshot is stored under; only a key of the patch's own (a hand-edited one is ignored). */
export function snapshotStoreKey(uuid: string, path: string, snapshot: Snapshot): string {
  const key = snapshot.key
  return typeof key === 'string' && key.startsWith(patchKeyPrefix(uuid))
    ? key
    : snapshotKey(uuid, path)
}

/**
 * Whether a journal was left by a restore that can no longer finish it: one of this process
 * (its restores run in the patch's queue, so a journal seen from inside the queue is stale), one
 * whose process is gone or whose pid now names another process (another boot, another start),
 * or one from another host that has been silent for ten minutes.
 */
export function isAbandoned(journal: RestoreJournal, host: string, nowMs: number): boolean {
  const owner = journal.owner
  if (!owner) return true
  if (owner.host !== host) return nowMs - Date.parse(journal.startedAt) > 10 * 60 * 1000
  return (
    owner.pid === process.pid ||
    isDeadProcess(owner.pid) ||
    isOtherProcess(owner.pid, owner, Date.parse(journal.startedAt))
  )
}

/** The error for a patch whose restore `journal` is still in flight in a live process. */
export function restoreInProgress(uuid: string, journal: RestoreJournal): PatchBackupError {
  return new PatchBackupError(
    'RESTORE_IN_PROGRESS',
    `Patch ${uuid} is being restored by process ${journal.owner?.pid} on ${journal.owner?.host}; wait for it to finish, then retry. If no restore of this patch is running (that process id now belongs to another program), run 'patch-backup recover ${uuid} --force' (recover(uuid, { force: true })).`,
  )
}
