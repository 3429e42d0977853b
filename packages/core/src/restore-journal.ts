import { backupKey, snapshotKey } from './backup-key.js'
import type { PatchManifest } from './types.js'

/** What a file held before a restore replaced it; `null` when there was no file. */
export interface Snapshot {
  integrity: string
  size: number
  mode: number
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
  const snapshots = new Set([
    ...Object.entries(lastRestoreOf(manifest)?.files ?? {})
      .filter(([, s]) => s !== null)
      .map(([path]) => path),
    ...Object.entries(journalOf(manifest)?.files ?? {})
      .filter(([, f]) => f.previous !== null)
      .map(([path]) => path),
  ])
  for (const path of snapshots) keys.push(snapshotKey(uuid, path))
  return keys
}
