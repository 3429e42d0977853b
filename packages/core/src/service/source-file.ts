// Reading a file to back it up. Small files are read with synchronous calls (open, fstat, read,
// close: a few microseconds each, where each async call is a thread-pool round trip); large ones,
// and files whose hard links are to be broken first, go through a file handle and a stream.

import { closeSync, constants, fstatSync, openSync, type Stats } from 'node:fs'
import type { open } from 'node:fs/promises'
import { PatchBackupError } from '../errors.js'
import type { ProjectFile } from '../file-path.js'
import { readWholeSync } from '../read-sync.js'

/** Files up to this size go to the store as one buffer: one read instead of a stream's round trips. */
export const SMALL_FILE_BYTES = 1024 * 1024

export function unreadable(file: ProjectFile, error: unknown): PatchBackupError {
  const reason =
    (error as NodeJS.ErrnoException)?.code ??
    (error instanceof Error ? error.message : String(error))
  return new PatchBackupError(
    'SOURCE_UNREADABLE',
    `Cannot read ${file.absolute} to back it up (${reason}). Check that it exists, is a regular file and is readable.`,
    { cause: error, path: file.key },
  )
}

export interface SmallSource {
  info: Stats
  data: Buffer
}

/**
 * The whole file and its stats, read synchronously; `undefined` when it must take the streaming
 * path (larger than `SMALL_FILE_BYTES` when opened or by the time it is read, or `breakLinks` with
 * other links). Throws SOURCE_UNREADABLE for a file that cannot be read or is not a regular file.
 */
export function readSmallSync(file: ProjectFile, breakLinks: boolean): SmallSource | undefined {
  let fd: number
  try {
    // O_NONBLOCK: a FIFO in place of the file must not block the event loop until a writer comes.
    fd = openSync(file.absolute, constants.O_RDONLY | constants.O_NONBLOCK)
  } catch (error) {
    throw unreadable(file, error)
  }
  try {
    const info = fstatSync(fd)
    if (!info.isFile()) throw unreadable(file, new Error('not a regular file'))
    if (info.size > SMALL_FILE_BYTES || (breakLinks && info.nlink > 1)) return undefined
    const data = readWholeSync(fd, info.size) // undefined: it grew since fstat, so it is streamed
    return data && { info, data }
  } catch (error) {
    if (error instanceof PatchBackupError) throw error
    throw unreadable(file, error)
  } finally {
    closeSync(fd)
  }
}

/** The whole file when it still has at most `size` bytes; `undefined` when it grew (then it is streamed). */
export async function readSmall(
  handle: Awaited<ReturnType<typeof open>>,
  size: number,
): Promise<Buffer | undefined> {
  const buffer = Buffer.allocUnsafe(size + 1)
  let filled = 0
  while (filled < buffer.length) {
    const { bytesRead } = await handle.read(buffer, filled, buffer.length - filled, filled)
    if (bytesRead === 0) break
    filled += bytesRead
  }
  return filled > size ? undefined : buffer.subarray(0, filled)
}
