import { type FileError, parseUuid, type RecordPatchedResult } from '@patch-backup/core'
import { fileArgument } from '../project.js'
import type { CommandContext } from './context.js'
import { toFileError } from './file-error.js'
import { patchNotFound } from './not-found.js'

export interface RecordOptions {
  uuid: string
  /** Files to record; default every file of the patch. */
  files?: readonly string[]
}

export interface RecordedFile {
  path: string
  /** The bytes on disk now, after the patch. */
  patchedIntegrity: string
  patchedSize: number
  /** The patch left this file as it was: its patched bytes are its backup's. */
  unchanged: boolean
}

export interface RecordResult extends RecordPatchedResult {
  uuid: string
  files: RecordedFile[]
}

/**
 * The step after a patch is applied: records each file's patched bytes in the manifest, so
 * `status` and `restore` can tell the patch's own change from a later one (`drifted`).
 */
export async function record(
  options: RecordOptions,
  { backups }: CommandContext,
): Promise<RecordResult> {
  const uuid = parseUuid(options.uuid)
  const errors: FileError[] = []
  let only: string[] | undefined
  if (options.files && options.files.length > 0) {
    // A path outside the project would throw for the whole batch: report it with the others.
    only = []
    for (const file of options.files) {
      try {
        const { key } = fileArgument(backups.paths, backups.cwd, file)
        if (!only.includes(key)) only.push(key)
      } catch (error) {
        errors.push(toFileError(file, error))
      }
    }
  }
  const result = await backups.recordPatched(uuid, only)
  if (!result) throw patchNotFound(uuid)
  const manifest = await backups.getPatchMetadata(uuid)
  const files: RecordedFile[] = []
  for (const path of result.recorded) {
    const entry = manifest?.files[path]
    if (typeof entry?.patchedIntegrity !== 'string') continue
    files.push({
      path,
      patchedIntegrity: entry.patchedIntegrity,
      patchedSize: Number(entry.patchedSize ?? 0),
      unchanged: entry.patchedIntegrity === entry.integrity,
    })
  }
  const allErrors = [...errors, ...result.errors]
  return {
    uuid,
    recorded: result.recorded,
    failed: allErrors.map((e) => e.path),
    errors: allErrors,
    files,
  }
}
