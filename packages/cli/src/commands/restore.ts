import {
  type BackupInfo,
  type FileError,
  type FileState,
  hashCurrentFile,
  PatchBackupError,
  type PatchManifest,
  parseUuid,
  type RestoreAction,
  type RestoreAllResult,
  restoreStep,
} from '@patch-backup/core'
import pMap from 'p-map'
import { manifestKey } from '../project.js'
import type { CommandBackups, CommandContext } from './context.js'
import { toFileError } from './file-error.js'
import { fileNotFound, patchNotFound } from './not-found.js'
import { checkBackup } from './read-backup.js'

export interface RestoreOptions {
  uuid: string
  /** Files to restore, one by one; default every file of the patch. */
  files?: readonly string[]
  /** Read and verify every backup, report what would change, write nothing. */
  dryRun?: boolean
  /** A whole patch all or nothing (default `true`). Files named are always restored one by one. */
  atomic?: boolean
  /** Restore drifted files too, keeping their current bytes for `undo`. */
  force?: boolean
}

/**
 * What a restore does to a file: writes it, finds it already original, refuses it (drifted), or
 * fails on it (a directory or other non-file there, an unreadable file): core's `restoreStep`.
 */
export type { RestoreAction }

export interface RestorePlanEntry {
  path: string
  size: number
  integrity: string
  /** The file on disk now. */
  current: FileState
  action: RestoreAction
}

/** A file that changed since its patched bytes were recorded. */
export interface DriftedFile {
  path: string
  /** What `record` saw after the patch. */
  patchedIntegrity: string
  /** What the file holds now. */
  currentIntegrity: string
}

export interface RestoreResult extends RestoreAllResult {
  uuid: string
  dryRun: boolean
  /** Whether this restore was (or, with `dryRun`, would be) all or nothing. */
  atomic: boolean
  /** Drifted files, restored with `force` or refused (`DRIFTED` in `errors`) without it. */
  drifted: DriftedFile[]
  /** With `dryRun`: each file whose backup verified, with its state now and what restore would do. */
  files?: RestorePlanEntry[]
  /** With `dryRun`: a restore of this patch was interrupted; the next call finishes or undoes it first. */
  pendingRecovery?: boolean
}

const CONCURRENCY = 8

/** The manifest keys to restore, and errors for the paths that name none. */
function select(
  backups: CommandBackups,
  uuid: string,
  manifest: PatchManifest,
  files: readonly string[] | undefined,
) {
  if (!files || files.length === 0) return { keys: Object.keys(manifest.files).sort(), errors: [] }
  const keys: string[] = []
  const errors: FileError[] = []
  for (const file of files) {
    try {
      const key = manifestKey(backups.paths, backups.cwd, manifest.files, file)
      if (!manifest.files[key]) errors.push(toFileError(file, fileNotFound(uuid, key)))
      else if (!keys.includes(key)) keys.push(key)
    } catch (error) {
      errors.push(toFileError(file, error))
    }
  }
  return { keys, errors }
}

/** The keys whose files this run may not write (`INVALID_PATH`), as file errors. */
function unwritableKeys(backups: CommandBackups, keys: readonly string[]): FileError[] {
  return keys.flatMap((key) => {
    try {
      backups.paths.fromKey(key)
      return []
    } catch (error) {
      return [toFileError(key, error)]
    }
  })
}

function driftError(d: DriftedFile): FileError {
  return toFileError(
    d.path,
    new PatchBackupError(
      'DRIFTED',
      `${d.path} changed since the patch: expected the patched bytes ${d.patchedIntegrity}, found ${d.currentIntegrity}. Restore with --force to replace it anyway; its current bytes are kept for 'patch-backup undo'.`,
      { path: d.path },
    ),
  )
}

/** Verifies each backup and classifies each file, as the service would; writes nothing. */
async function plan(
  backups: CommandBackups,
  uuid: string,
  manifest: PatchManifest,
  keys: string[],
  force: boolean,
) {
  return pMap(
    keys,
    async (key) => {
      const entry = manifest.files[key] as BackupInfo
      try {
        const file = backups.paths.fromKey(key)
        await checkBackup(backups, uuid, key, entry)
        const current = await hashCurrentFile(file.absolute)
        const { state, action, error } = restoreStep(key, file.absolute, entry, current, {
          force,
        })
        const drifted: DriftedFile | undefined =
          state === 'drifted'
            ? {
                path: key,
                patchedIntegrity: String(entry.patchedIntegrity),
                currentIntegrity: current?.integrity ?? '',
              }
            : undefined
        const entryPlan: RestorePlanEntry = {
          path: key,
          size: entry.size,
          integrity: entry.integrity,
          current: state,
          action,
        }
        return { plan: entryPlan, drifted, refusal: error && toFileError(key, error) }
      } catch (error) {
        return { error: toFileError(key, error) }
      }
    },
    { concurrency: CONCURRENCY },
  )
}

/** After a restore refused drift: the hashes of each drifted file, for people and scripts. */
async function driftedAmong(backups: CommandBackups, uuid: string, paths: Set<string>) {
  const states = (await backups.status(uuid)) ?? []
  return states
    .filter((s) => s.state === 'drifted' && paths.has(s.path))
    .map((s) => ({
      path: s.path,
      patchedIntegrity: s.patchedIntegrity ?? '',
      currentIntegrity: s.currentIntegrity ?? '',
    }))
}

/**
 * Restores a whole patch (all or nothing unless `atomic: false`), or the files named one by one.
 * Drifted files are refused (`DRIFTED`) unless `force`. `dryRun` verifies and writes nothing.
 */
export async function restore(
  options: RestoreOptions,
  { backups, progress }: CommandContext,
): Promise<RestoreResult> {
  const uuid = parseUuid(options.uuid)
  const manifest = await backups.getPatchMetadata(uuid)
  if (!manifest) throw patchNotFound(uuid)
  const named = !!options.files && options.files.length > 0
  const force = !!options.force
  const { keys, errors } = select(backups, uuid, manifest, options.files)
  const result: RestoreResult = {
    uuid,
    dryRun: !!options.dryRun,
    atomic: !named && options.atomic !== false,
    restored: [],
    failed: [],
    errors: [],
    drifted: [],
  }
  const bytes = keys.reduce((sum, key) => sum + (manifest.files[key]?.size ?? 0), 0)
  progress?.start(options.dryRun ? 'verify' : 'restore', { files: keys.length, bytes })
  try {
    if (options.dryRun) {
      result.files = []
      if (manifest.restoreJournal) result.pendingRecovery = true
      for (const outcome of await plan(backups, uuid, manifest, keys, force)) {
        if (outcome.drifted) result.drifted.push(outcome.drifted)
        if (!outcome.plan) errors.push(outcome.error)
        else {
          result.files.push(outcome.plan)
          if (outcome.plan.action === 'refuse' && outcome.drifted)
            errors.push(driftError(outcome.drifted))
          else if (outcome.refusal) errors.push(outcome.refusal)
          else result.restored.push(outcome.plan.path)
        }
      }
    } else if (!named) {
      // All or nothing: a key this run may not write (outside the project, without
      // --allow-outside) fails the restore before any file is touched, named with the others.
      const unreachable = result.atomic ? unwritableKeys(backups, keys) : []
      if (unreachable.length > 0) errors.push(...unreachable)
      else {
        const all = await backups.restoreAllBackups(uuid, { atomic: result.atomic, force })
        result.restored.push(...all.restored)
        errors.push(...all.errors)
        if (all.rolledBack) result.rolledBack = true
        if (all.unchanged) result.unchanged = all.unchanged
      }
    } else {
      const outcomes = await pMap(
        keys,
        async (key) => {
          try {
            // false: the entry went away since we read the manifest.
            if (await backups.restoreBackup(uuid, key, { force })) return undefined
            return toFileError(key, fileNotFound(uuid, key))
          } catch (error) {
            return toFileError(key, error)
          }
        },
        { concurrency: CONCURRENCY },
      )
      keys.forEach((key, i) => {
        const error = outcomes[i]
        if (error) errors.push(error)
        else result.restored.push(key)
      })
    }
  } finally {
    progress?.stop()
  }
  if (!options.dryRun) {
    const refused = new Set(errors.filter((e) => e.code === 'DRIFTED').map((e) => e.path))
    if (refused.size > 0) result.drifted = await driftedAmong(backups, uuid, refused)
  }
  result.errors = errors
  result.failed = errors.map((e) => e.path)
  return result
}
