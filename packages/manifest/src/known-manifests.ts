// The manifests this process last read or wrote under their locks, so that a backup of one file
// neither parses its whole patch's manifest again nor rebuilds it. A remembered document is used
// only while the file holds exactly the bytes it was made from (compared in full: inode numbers
// and timestamps can repeat within a timestamp tick, bytes cannot lie), and nothing in it can
// change (see manifest-document.ts).

import { readFileSync } from 'node:fs'
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
    bytes = readFileSync(path)
  } catch (error) {
    forget(path)
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw unreadable(path, error)
  }
  const seen = known.get(path)
  if (seen?.document.matches(bytes)) return seen.document
  const parsed = parseManifest(bytes.toString('utf8'), path, uuid)
  const document = ManifestDocument.from(parsed, uuid, path)
  remember(path, bytes.length, document)
  return document
}
