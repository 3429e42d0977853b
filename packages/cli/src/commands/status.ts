import { type FileState, parseUuid } from '@patch-backup/core'
import type { CommandContext } from './context.js'
import { patchNotFound } from './not-found.js'

export interface StatusOptions {
  uuid: string
}

export interface FileStatus {
  path: string
  state: FileState
  /** Size of the backup. */
  size: number
  /** The backed-up (pre-patch) bytes. */
  backupIntegrity: string
  /** The bytes `record` saw after the patch; absent when they were not recorded. */
  patchedIntegrity?: string
  /** The bytes on disk now; absent when the file is missing. */
  currentIntegrity?: string
  /** Hard links the file has now, when more than one (a pnpm store): a patch writing in place writes into them all. */
  links?: number
}

export interface StatusResult {
  uuid: string
  files: FileStatus[]
  counts: Record<FileState, number>
}

export const FILE_STATES: readonly FileState[] = [
  'original',
  'patched',
  'drifted',
  'modified',
  'mode-changed',
  'missing',
  'directory',
  'symlink',
  'not-a-file',
  'unreadable',
]

/**
 * Each file of a patch as the service classifies it: `original` (holds its backup), `patched`
 * (holds the recorded patched bytes), `drifted` (neither, though the patch was recorded),
 * `modified` (differs from its backup, nothing recorded), `mode-changed` (its bytes, another
 * mode), `missing`, or something other than a
 * regular file where it was: `directory`, `symlink`, `not-a-file` (a fifo, socket or device) or
 * `unreadable` (see `FileState` in core).
 */
export async function status(
  options: StatusOptions,
  { backups }: CommandContext,
): Promise<StatusResult> {
  const uuid = parseUuid(options.uuid)
  // First: it finishes or rolls back any restore a crash left in flight, then hashes every file.
  const states = await backups.status(uuid)
  if (!states) throw patchNotFound(uuid)
  const manifest = await backups.getPatchMetadata(uuid)
  const counts = Object.fromEntries(FILE_STATES.map((s) => [s, 0])) as Record<FileState, number>
  const files = states.map((s): FileStatus => {
    counts[s.state]++
    const file: FileStatus = {
      path: s.path,
      state: s.state,
      size: manifest?.files[s.path]?.size ?? 0,
      backupIntegrity: s.backupIntegrity,
    }
    if (s.patchedIntegrity !== undefined) file.patchedIntegrity = s.patchedIntegrity
    if (s.currentIntegrity !== undefined) file.currentIntegrity = s.currentIntegrity
    if (s.links !== undefined) file.links = s.links
    return file
  })
  return { uuid, files, counts }
}
