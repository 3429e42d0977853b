import { PatchBackupError } from '@patch-backup/core'

export function patchNotFound(uuid: string): PatchBackupError {
  return new PatchBackupError(
    'PATCH_NOT_FOUND',
    `No patch ${uuid} in this store. Run 'patch-backup list' to see the patches it has, or check --dir.`,
  )
}

export function fileNotFound(uuid: string, file: string): PatchBackupError {
  return new PatchBackupError(
    'FILE_NOT_FOUND',
    `Patch ${uuid} has no backup of ${file}. Run 'patch-backup list ${uuid}' to see its files.`,
    { path: file },
  )
}
