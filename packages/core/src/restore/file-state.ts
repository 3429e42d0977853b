import { createHash } from 'node:crypto'
import { open } from 'node:fs/promises'
import { PatchBackupError } from '../errors.js'
import type { BackupInfo } from '../types.js'

/**
 * Where a backed-up file stands now:
 * - `original`: it holds the backed-up bytes;
 * - `patched`: it holds the bytes recorded after the patch (`recordPatched`);
 * - `drifted`: neither, though the patched bytes were recorded (someone else changed it, e.g. a reinstall);
 * - `modified`: it differs from the backup and no patched bytes were recorded to tell more;
 * - `missing`: there is no file.
 */
export type FileState = 'original' | 'patched' | 'drifted' | 'modified' | 'missing'

export interface CurrentFile {
  integrity: string
  size: number
  mode: number
}

/** Hashes the file at `absolute` (streaming), or `undefined` if nothing is there. */
export async function hashCurrentFile(absolute: string): Promise<CurrentFile | undefined> {
  let handle: Awaited<ReturnType<typeof open>>
  try {
    handle = await open(absolute, 'r')
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    // A parent that is not a directory means there is no file either.
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined
    throw new PatchBackupError(
      'SOURCE_UNREADABLE',
      `Cannot read ${absolute} to compare it with its backup (${code ?? String(error)}). Check its permissions.`,
      { cause: error, path: absolute },
    )
  }
  try {
    const info = await handle.stat()
    const hash = createHash('sha256')
    if (!info.isFile())
      return { integrity: 'not-a-file', size: info.size, mode: info.mode & 0o7777 }
    for await (const chunk of handle.createReadStream({ autoClose: false })) hash.update(chunk)
    return {
      integrity: `sha256-${hash.digest('base64')}`,
      size: info.size,
      mode: info.mode & 0o7777,
    }
  } finally {
    await handle.close()
  }
}

export function classify(entry: BackupInfo, current: CurrentFile | undefined): FileState {
  if (!current) return 'missing'
  if (current.integrity === entry.integrity) return 'original'
  const patched = entry.patchedIntegrity
  if (typeof patched !== 'string') return 'modified'
  return current.integrity === patched ? 'patched' : 'drifted'
}
