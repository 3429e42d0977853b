import { type FileError, PatchBackupError } from '@patch-backup/core'

/** One file's failure as results report it: `{ path, code, message }`. */
export function toFileError(path: string, error: unknown): FileError {
  if (error instanceof PatchBackupError) return { path, code: error.code, message: error.message }
  return {
    path,
    code: 'UNEXPECTED',
    message: error instanceof Error ? error.message : String(error),
  }
}
