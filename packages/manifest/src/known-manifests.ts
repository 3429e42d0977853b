// The manifests this process last read or wrote under their locks, so that a backup of one file
// neither parses its whole patch's manifest again nor rebuilds it. A remembered document is used
// only while the file holds exactly the bytes it was made from (compared in full: inode numbers
// and timestamps can repeat within a timestamp tick, bytes cannot lie), and nothing in it can
// change (see manifest-document.ts).

import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs'
import { ManifestDocument } from './manifest-document.js'
import { parseManifest, unreadable } from './manifest-file.js'

interface Known {
  /** How many bytes the file had: what the memory limit counts. */
  size: number
  document: ManifestDocument
}

/** Enough for the patches a process works on at once; a prune of thousands just cycles. */
const LIMIT = 64
/** And at most this much text in all (each document holds about as much again). */
const LIMIT_BYTES = 32 * 1024 * 1024
const known = new Map<string, Known>()
let knownBytes = 0

export function remember(path: string, size: number, document: ManifestDocument): void {
  forget(path)
  known.set(path, { size, document })
  knownBytes += size
  while (known.size > LIMIT || (knownBytes > LIMIT_BYTES && known.size > 1)) {
    forget(known.keys().next().value as string)
  }
}

export function forget(path: string): void {
  const gone = known.get(path)
  if (gone === undefined) return
  known.delete(path)
  knownBytes -= gone.size
}

/**
 * The manifest at `path` as a document, with synchronous calls, or `undefined` when there is
 * none. Throws MANIFEST_UNREADABLE or MANIFEST_CORRUPT as `readManifest` does.
 */
export function readKnownManifest(path: string, uuid: string): ManifestDocument | undefined {
  let bytes: Buffer
  try {
    bytes = readRegularFileSync(path)
  } catch (error) {
    forget(path)
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw unreadable(path, error)
  }
  const seen = known.get(path)
  if (seen?.document.matches(bytes)) return seen.document
  const text = bytes.toString('utf8')
  const document = ManifestDocument.read(bytes, text, parseManifest(text, path, uuid), uuid, path)
  remember(path, bytes.length, document)
  return document
}

/**
 * The whole file, read synchronously. Opened without blocking and refused unless it is a regular
 * file: a fifo put in its place would otherwise block the event loop, and the whole process, for
 * good (an async read only ever blocked one call).
 */
function readRegularFileSync(path: string): Buffer {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK)
  try {
    const info = fstatSync(fd)
    if (!info.isFile()) throw new Error('not a regular file')
    const bytes = Buffer.allocUnsafe(info.size)
    let filled = 0
    while (filled < bytes.length) {
      const read = readSync(fd, bytes, filled, bytes.length - filled, null)
      if (read === 0) break
      filled += read
    }
    // A file that grew meanwhile is read to its end.
    const more: Buffer[] = [bytes.subarray(0, filled)]
    for (;;) {
      const chunk = Buffer.allocUnsafe(64 * 1024)
      const read = readSync(fd, chunk, 0, chunk.length, null)
      if (read === 0) break
      more.push(chunk.subarray(0, read))
    }
    return more.length === 1 ? (more[0] as Buffer) : Buffer.concat(more)
  } finally {
    closeSync(fd)
  }
}
