import { writeFile as writeFileCallback } from 'node:fs'
import { rename, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { PatchBackupError } from '@patch-backup/core'
import { tempFileName } from './manifest-file.js'

// One open, write, close: fs/promises' writeFile takes more thread-pool round trips.
const writeFile = promisify(writeFileCallback)

export function unwritable(path: string, action: string, error: unknown): PatchBackupError {
  const code = (error as NodeJS.ErrnoException).code
  const hint =
    code === 'ENOSPC' || code === 'EDQUOT' || code === 'EFBIG'
      ? 'Free some disk space'
      : code === 'EROFS'
        ? 'The file system is read-only; point the backups at a writable directory'
        : 'Check that this user can write to the directory'
  return new PatchBackupError(
    'MANIFEST_UNWRITABLE',
    `Cannot ${action} the patch manifest ${path}: ${(error as Error).message}. ${hint}, then retry; the previous manifest is unchanged.`,
    { path, cause: error },
  )
}

/**
 * Replaces `path` with `text` all at once: a temp file in the same directory, then rename.
 * Readers see the old or the new file, never a part; on failure the old file is untouched
 * and the temp file is gone. `beforeRename` runs alongside the temp write and can abort the
 * rename by rejecting (a lost lock).
 */
export async function writeFileAtomic(
  dir: string,
  uuid: string,
  path: string,
  text: string,
  beforeRename: () => Promise<void>,
): Promise<void> {
  const temp = join(dir, tempFileName(uuid))
  try {
    // allSettled, not all: the temp file must exist (or have failed) before it is cleaned up.
    const [written, check] = await Promise.allSettled([
      writeFile(temp, text, { flag: 'wx' }),
      beforeRename(),
    ])
    if (written.status === 'rejected') throw written.reason
    if (check.status === 'rejected') throw check.reason
    await rename(temp, path)
  } catch (error) {
    await rm(temp, { force: true }).catch(() => {})
    if (error instanceof PatchBackupError) throw error
    throw unwritable(path, 'write', error)
  }
}
