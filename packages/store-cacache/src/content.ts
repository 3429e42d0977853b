import { constants, createWriteStream } from 'node:fs'
import {
  copyFile,
  type FileHandle,
  link,
  mkdir,
  open,
  readdir,
  rename,
  rm,
  stat,
  writeFile,
} from 'node:fs/promises'
import { dirname, join } from 'node:path'
import type { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { HashingStream, type PutResult, sha256Integrity } from '@patch-backup/core'
import cacache from 'cacache'
import { contentPathFor, TMP_DIR, tmpPathFor, trashPathFor, trashPrefixFor } from './paths.js'

/** One live index entry, as `cacache.ls.stream` yields it. */
export interface IndexEntry {
  key: string
  integrity: string
  path: string
  size?: number
  time: number
  metadata?: unknown
}

/** Hard links are not available on every file system; these codes mean "copy instead". */
const NO_LINKS = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS', 'EXDEV', 'EMLINK'])

export function errorCode(error: unknown): string | undefined {
  return typeof error === 'object' && error !== null && 'code' in error
    ? String(error.code)
    : undefined
}

function ignoreMissing(error: unknown): undefined {
  if (errorCode(error) === 'ENOENT') return undefined
  throw error
}

/**
 * Writes `data` to the scratch file `tmp`, hashing it on the way (sha256), one chunk at a time.
 * A failing source rejects with the source's error.
 */
export async function writeTemp(tmp: string, data: Readable | Uint8Array): Promise<PutResult> {
  await mkdir(dirname(tmp), { recursive: true })
  if (data instanceof Uint8Array) {
    await writeFile(tmp, data, { flag: 'wx' })
    return { integrity: sha256Integrity(data), size: data.byteLength }
  }
  const hashing = new HashingStream()
  await pipeline(data, hashing, createWriteStream(tmp, { flags: 'wx' }))
  if (hashing.integrity === undefined) throw new Error('the source stream ended without finishing')
  return { integrity: hashing.integrity, size: hashing.size }
}

/** Gives `target` the bytes of `source` without touching `source`: a hard link, or a copy renamed into place. */
async function replaceWith(cachePath: string, source: string, target: string): Promise<void> {
  const side = tmpPathFor(cachePath)
  try {
    try {
      await link(source, side)
    } catch (error) {
      if (!NO_LINKS.has(errorCode(error) ?? '')) throw error
      await copyFile(source, side, constants.COPYFILE_EXCL)
    }
    // Atomic; overwriting is harmless because the name is the hash of the bytes.
    await rename(side, target)
  } finally {
    await rm(side, { force: true })
  }
}

/**
 * Makes sure the content file `target` exists with the bytes of the scratch file `tmp` (of `size` bytes),
 * keeping `tmp` (so it can be called again). An existing file of the right size is kept (content is
 * addressed by hash); one of the wrong size (truncated, damaged) is replaced.
 */
export async function placeContent(
  cachePath: string,
  tmp: string,
  target: string,
  size: number,
): Promise<void> {
  await mkdir(dirname(target), { recursive: true })
  try {
    await link(tmp, target)
    return
  } catch (error) {
    const code = errorCode(error)
    if (code !== 'EEXIST' && !NO_LINKS.has(code ?? '')) throw error
  }
  const existing = await stat(target).catch(ignoreMissing)
  if (existing?.isFile() && existing.size === size) return
  await replaceWith(cachePath, tmp, target)
}

/** Writes the index entry `key -> integrity` (cacache's own `index.insert`, the same format `cacache.put` writes). */
export async function insertIndexEntry(
  cachePath: string,
  key: string,
  result: PutResult,
): Promise<void> {
  for (let attempt = 0; attempt < 2; attempt++) {
    // cacache resolves undefined (instead of failing) when the bucket's directory vanished mid-write.
    const entry = await cacache.index.insert(cachePath, key, result.integrity, {
      size: result.size,
    })
    if (entry) return
  }
  throw new Error(`cacache could not write the index entry of ${key}`)
}

/** Every live index entry (deleted keys are left out). Errors surface on the iterator. */
export async function* listIndexEntries(cachePath: string): AsyncGenerator<IndexEntry> {
  const stream = cacache.ls.stream(cachePath)
  // Minipass replays a past error to the next listener, so the iterator still sees it; this only keeps
  // an error after an early `break` from being thrown as unhandled.
  stream.on('error', () => {})
  for await (const entry of stream as unknown as AsyncIterable<IndexEntry | null>) {
    if (entry?.integrity) yield entry
  }
}

function samePlace(cachePath: string, integrity: string, target: string): boolean {
  try {
    return contentPathFor(cachePath, integrity) === target
  } catch {
    return false
  }
}

/**
 * Whether any live index entry points at the content of `integrity`.
 *
 * A full scan of the index for now: O(keys) per call. It is the only place that answers this
 * question, so a reference index (integrity -> keys) can replace it later.
 */
export async function isContentReferenced(cachePath: string, integrity: string): Promise<boolean> {
  const target = contentPathFor(cachePath, integrity)
  for await (const entry of listIndexEntries(cachePath)) {
    if (samePlace(cachePath, entry.integrity, target)) return true
  }
  return false
}

/** Trash files of `integrity` that a `remove` has parked and not yet deleted or put back. */
async function trashFilesFor(cachePath: string, integrity: string): Promise<string[]> {
  const dir = join(cachePath, TMP_DIR)
  const prefix = trashPrefixFor(integrity)
  const names = (await readdir(dir).catch(ignoreMissing)) ?? []
  return names.filter((name) => name.startsWith(prefix)).map((name) => join(dir, name))
}

async function openIfThere(file: string): Promise<FileHandle | undefined> {
  return open(file, 'r').catch(ignoreMissing)
}

/**
 * Opens the content of `integrity` for reading, or `undefined` when it is not there.
 * Holding the descriptor means a later removal cannot pull the bytes away mid-read. While a remover
 * has parked the file in the trash (the short window of the remove protocol), the parked file is read.
 */
export async function openContent(
  cachePath: string,
  integrity: string,
): Promise<FileHandle | undefined> {
  const target = contentPathFor(cachePath, integrity)
  const handle = await openIfThere(target)
  if (handle) return handle
  for (const trash of await trashFilesFor(cachePath, integrity)) {
    const parked = await openIfThere(trash)
    if (parked) return parked
  }
  // The remover may have put it back between the two looks.
  return openIfThere(target)
}

/** Whether the content of `integrity` is on disk (counting a file a remover has parked for a moment). */
export async function contentExists(cachePath: string, integrity: string): Promise<boolean> {
  const handle = await openContent(cachePath, integrity)
  await handle?.close()
  return handle !== undefined
}

/** Puts a parked content file back at `target`, unless a put has already re-created it. */
async function restoreFromTrash(trash: string, target: string): Promise<void> {
  try {
    await link(trash, target)
  } catch (error) {
    const code = errorCode(error)
    if (code === 'EEXIST') {
      await rm(trash, { force: true })
      return
    }
    if (!NO_LINKS.has(code ?? '')) throw error
    await rename(trash, target)
    return
  }
  await rm(trash, { force: true })
}

/*
 * Freeing shared content without losing a concurrent put (in this process or another).
 *
 *   remover (after its index entry is gone)        put (of the same bytes, under another key)
 *   R1 no live entry references the content?       P1 write bytes to tmp/<scratch> and hash them
 *   R2 rename content -> tmp/<trash>               P2 hard-link scratch -> content (kept if present)
 *   R3 does a live entry reference it now?         P3 append the index entry
 *   R4 yes: put it back (link; kept if present)    P4 hard-link scratch -> content again if missing
 *      no: unlink the trash file                   P5 unlink the scratch file
 *
 * If P3 lands before R3's scan, R3 sees it and R4 puts the bytes back. If it lands after, then P4
 * runs after R2 and finds the content gone, so it re-links it from the scratch file it still holds.
 * Either way the new entry ends up with its content. Readers that miss the content during R2..R4
 * read the parked trash file instead (see `openContent`). R1 keeps content that is already
 * shared from ever being moved at all.
 */
/** Frees the content of `integrity` if no live key references it. Resolves whether it was freed. */
export async function freeContentIfUnreferenced(
  cachePath: string,
  integrity: string,
): Promise<boolean> {
  if (await isContentReferenced(cachePath, integrity)) return false
  const target = contentPathFor(cachePath, integrity)
  const trash = trashPathFor(cachePath, integrity)
  await mkdir(dirname(trash), { recursive: true })
  try {
    await rename(target, trash)
  } catch (error) {
    if (errorCode(error) === 'ENOENT') return false // already gone (another remover won)
    throw error
  }
  if (await isContentReferenced(cachePath, integrity).catch(() => true)) {
    await restoreFromTrash(trash, target)
    return false
  }
  await rm(trash, { force: true })
  return true
}
