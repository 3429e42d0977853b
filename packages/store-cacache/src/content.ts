import {
  constants,
  linkSync,
  mkdirSync,
  statSync,
  unlinkSync,
  writeFile as writeFileCallback,
  writeFileSync,
} from 'node:fs'
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
  unlink,
} from 'node:fs/promises'
import { dirname, join } from 'node:path'
import type { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { promisify } from 'node:util'
import { HashingStream, type PutResult, sha256Integrity } from '@patch-backup/core'
import { loadCacache } from './load-cacache.js'
import { contentPathFor, TMP_DIR, tmpPathFor, trashPathFor, trashPrefixFor } from './paths.js'
import { references } from './references.js'

/** One live index entry, as `cacache.ls.stream` yields it. */
export interface IndexEntry {
  key: string
  integrity: string
  path: string
  size?: number
  time: number
  metadata?: unknown
}

// One open, write, close: fs/promises' writeFile takes more thread-pool round trips.
const writeFileOnce = promisify(writeFileCallback)

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

/** Runs `task`; if it fails because the parent directory of `file` is missing, creates it and runs it again. */
async function withParent<T>(file: string, task: () => Promise<T>): Promise<T> {
  try {
    return await task()
  } catch (error) {
    if (errorCode(error) !== 'ENOENT') throw error
  }
  await mkdir(dirname(file), { recursive: true })
  return task()
}

/**
 * Writes `data` to the scratch file `tmp`, hashing it on the way (sha256), one chunk at a time.
 * A failing source rejects with the source's error. The scratch directory is created only when
 * missing (`cacache.verify` deletes it), so the common case costs no `mkdir`.
 */
export async function writeTemp(tmp: string, data: Readable | Uint8Array): Promise<PutResult> {
  if (data instanceof Uint8Array) {
    await withParent(tmp, () => writeFileOnce(tmp, data, { flag: 'wx' }))
    return { integrity: sha256Integrity(data), size: data.byteLength }
  }
  const handle = await withParent(tmp, () => open(tmp, 'wx'))
  const hashing = new HashingStream()
  // A deep write queue lets reading, hashing (this thread) and writing overlap on big files.
  await pipeline(data, hashing, handle.createWriteStream({ highWaterMark: 2 * 1024 * 1024 }))
  if (hashing.integrity === undefined) throw new Error('the source stream ended without finishing')
  return { integrity: hashing.integrity, size: hashing.size }
}

/** Deletes a scratch file (it is a second link to content by now, so this frees nothing). */
export async function removeScratch(tmp: string): Promise<void> {
  await unlink(tmp).catch(() => {})
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
  try {
    await withParent(target, () => link(tmp, target))
    return
  } catch (error) {
    const code = errorCode(error)
    if (code !== 'EEXIST' && !NO_LINKS.has(code ?? '')) throw error
  }
  const existing = await stat(target).catch(ignoreMissing)
  if (existing?.isFile() && existing.size === size) return
  await replaceWith(cachePath, tmp, target)
}

/** `placeContent` after the index entry is written: one `stat` when the content is there, as it almost always is. */
export async function ensureContent(
  cachePath: string,
  tmp: string,
  target: string,
  size: number,
): Promise<void> {
  const existing = await stat(target).catch(ignoreMissing)
  if (existing?.isFile() && existing.size === size) return
  await placeContent(cachePath, tmp, target, size)
}

/*
 * Synchronous twins of the steps above, for sources held in memory (small files). Each is a
 * handful of microseconds; the async ones each cost a thread-pool round trip, and at 4 KiB a
 * backup is round trips, not bytes. They take the same steps in the same order, so the remove
 * protocol below holds for them unchanged; rare branches (a damaged content file, no hard links)
 * fall back to the async code.
 */

/** `writeTemp` of a buffer: one open/write/close (a `mkdir` only when `tmp/` is missing). */
export function writeTempSync(tmp: string, data: Uint8Array): PutResult {
  try {
    writeFileSync(tmp, data, { flag: 'wx' })
  } catch (error) {
    if (errorCode(error) !== 'ENOENT') throw error
    mkdirSync(dirname(tmp), { recursive: true })
    writeFileSync(tmp, data, { flag: 'wx' })
  }
  return { integrity: sha256Integrity(data), size: data.byteLength }
}

/** `placeContent` whose common cases (a new link, or content already there) cost one or two calls. */
export async function placeContentSync(
  cachePath: string,
  tmp: string,
  target: string,
  size: number,
): Promise<void> {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      linkSync(tmp, target)
      return
    } catch (error) {
      const code = errorCode(error)
      if (code === 'ENOENT' && attempt === 0) {
        mkdirSync(dirname(target), { recursive: true })
        continue
      }
      if (code !== 'EEXIST' && !NO_LINKS.has(code ?? '')) throw error
      break
    }
  }
  if (hasSize(target, size)) return
  await replaceWith(cachePath, tmp, target)
}

/** `ensureContent`: one `stat` when the content is there. */
export async function ensureContentSync(
  cachePath: string,
  tmp: string,
  target: string,
  size: number,
): Promise<void> {
  if (hasSize(target, size)) return
  await placeContentSync(cachePath, tmp, target, size)
}

function hasSize(file: string, size: number): boolean {
  const existing = statSync(file, { throwIfNoEntry: false })
  return existing?.isFile() === true && existing.size === size
}

export function removeScratchSync(tmp: string): void {
  try {
    unlinkSync(tmp)
  } catch {}
}

/** Every live index entry (deleted keys are left out). Errors surface on the iterator. */
export async function* listIndexEntries(cachePath: string): AsyncGenerator<IndexEntry> {
  const stream = (await loadCacache()).ls.stream(cachePath)
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

/** Whether any live index entry points at the content of `integrity`: a full scan of the index. */
export async function scanForReference(cachePath: string, integrity: string): Promise<boolean> {
  const target = contentPathFor(cachePath, integrity)
  for await (const entry of listIndexEntries(cachePath)) {
    if (samePlace(cachePath, entry.integrity, target)) return true
  }
  return false
}

/**
 * Whether any live index entry points at the content of `integrity`. Reads only the refs of that
 * content and their keys' buckets (see references.ts); the first call on a store that plain
 * cacache wrote builds the reference index with one scan, and a store where that cannot be done
 * (read-only) is scanned every time.
 */
export async function isContentReferenced(cachePath: string, integrity: string): Promise<boolean> {
  if (await references.ensureComplete(cachePath, listIndexEntries)) {
    return references.referencedByIndex(cachePath, integrity)
  }
  return scanForReference(cachePath, integrity)
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
 *                                                  P1.5 link the ref (references.ts)
 *   R2 rename content -> tmp/<trash>               P2 hard-link scratch -> content (kept if present)
 *   R3 does a live entry reference it now?         P3 append the index entry
 *                                                  P3.5 link the ref again if it is gone
 *   R4 yes: put it back (link; kept if present)    P4 hard-link scratch -> content again if missing
 *      no: unlink the trash file                   P5 unlink the scratch file
 *
 * If R3 sees P3's entry (through the ref P1.5 linked), R4 puts the bytes back. If it does not, P3 or
 * P1.5 landed after R3 looked, so P4 runs after R2 and finds the content gone, and re-links it from
 * the scratch file it still holds.
 * Either way the new entry ends up with its content. Readers that miss the content during R2..R4
 * read the parked trash file instead (see `openContent`). R1 keeps content that is already
 * shared from ever being moved at all.
 */
/**
 * Frees the content of `integrity` if no live key references it and `keep` (asked only then, so
 * shared content never pays for it) does not claim it. Resolves whether it was freed.
 */
export async function freeContentIfUnreferenced(
  cachePath: string,
  integrity: string,
  keep?: (integrity: string) => boolean | Promise<boolean>,
): Promise<boolean> {
  if (await isContentReferenced(cachePath, integrity)) return false
  if (keep && (await keep(integrity))) return false
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
