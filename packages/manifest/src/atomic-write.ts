import {
  closeSync,
  linkSync,
  openSync,
  renameSync,
  rmSync,
  unlink as unlinkCallback,
  unlinkSync,
  writeFile as writeFileCallback,
  writevSync,
} from 'node:fs'
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

/** Manifests up to this size are written with synchronous calls; larger ones take the async path. */
export const SYNC_WRITE_BYTES = 1024 * 1024

/**
 * `writeFileAtomic` with synchronous calls (open, write, close, rename: microseconds each instead
 * of a thread-pool round trip each), for manifests up to `SYNC_WRITE_BYTES`. `beforeRename` is the
 * synchronous lock check.
 */
export function writeFileAtomicSync(
  dir: string,
  uuid: string,
  path: string,
  chunks: readonly Buffer[],
  beforeRename: () => void,
): void {
  const temp = join(dir, tempFileName(uuid))
  const retired = retire(dir, uuid, path)
  try {
    writeChunks(temp, chunks)
    beforeRename()
    renameSync(temp, path)
  } catch (error) {
    if (retired) drop(retired)
    try {
      rmSync(temp, { force: true })
    } catch {}
    if (error instanceof PatchBackupError) throw error
    throw unwritable(path, 'write', error)
  }
  if (retired) drop(retired)
}

/** Second names not yet unlinked: a process that exits first unlinks them on its way out. */
const pending = new Set<string>()

let exitHooked = false

function drop(name: string): void {
  if (!exitHooked) {
    exitHooked = true
    process.once('exit', dropPending)
  }
  pending.add(name)
  unlinkCallback(name, () => pending.delete(name))
}

function dropPending(): void {
  for (const name of pending) {
    try {
      unlinkSync(name)
    } catch {}
  }
  pending.clear()
}

/** Creates `file` (it must not exist) holding `chunks` in order: one `writev` in the common case. */
function writeChunks(file: string, chunks: readonly Buffer[]): void {
  const fd = openSync(file, 'wx')
  try {
    let left = chunks.filter((chunk) => chunk.length > 0)
    while (left.length > 0) {
      let written = writevSync(fd, left)
      // A short write (rare on a regular file): drop what went out, write the rest.
      const rest: Buffer[] = []
      for (const chunk of left) {
        if (written >= chunk.length) written -= chunk.length
        else {
          rest.push(chunk.subarray(written))
          written = 0
        }
      }
      left = rest
    }
  } finally {
    closeSync(fd)
  }
}

/**
 * A second name for the manifest about to be replaced, so that the rename does not free its
 * blocks: on a file system mounted with `discard`, freeing them inside `rename` took most of a
 * one-file backup (a millisecond under load). The caller unlinks the second name on the thread
 * pool, off the event loop, once the rename is done. It is a temp name of this process, so if the
 * process dies first, the next `list()` removes it. `undefined` when there is no manifest yet or
 * no hard links here.
 */
function retire(dir: string, uuid: string, path: string): string | undefined {
  const name = join(dir, tempFileName(uuid))
  try {
    linkSync(path, name)
    return name
  } catch {
    return undefined
  }
}
