import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs'
import type { FileHandle } from 'node:fs/promises'
import { resolve } from 'node:path'
import type { Readable } from 'node:stream'
import {
  asStoreError,
  type BackupStore,
  integrityMismatch,
  KeyedQueue,
  PatchBackupError,
  type PutResult,
  type RemoveOptions,
  type StillNeeded,
  VerifyingStream,
  verifyBytes,
} from '@patch-backup/core'
import { type CollectGarbageResult, collectGarbage, removeDeadScratch } from './collect-garbage.js'
import {
  contentExists,
  ensureContent,
  ensureContentSync,
  errorCode,
  freeContentIfUnreferenced,
  listIndexEntries,
  openContent,
  placeContent,
  placeContentSync,
  removeScratch,
  removeScratchSync,
  writeTemp,
  writeTempSync,
} from './content.js'
import { indexEntries } from './index-entry.js'
import { loadCacache } from './load-cacache.js'
import { contentPathFor, tmpPathFor } from './paths.js'
import { references } from './references.js'

export interface CacacheStoreOptions {
  /** The cacache directory itself, e.g. `~/.socket/_cacache`. Created on first write. */
  path: string
}

export interface CacacheStore extends BackupStore {
  /** The absolute cacache directory. */
  readonly path: string
  keys(prefix: string): AsyncIterable<string>
  openKey(key: string): Promise<Readable | undefined>
  /** Frees unreferenced content and clears scratch files older than an hour (see collect-garbage.ts). */
  collectGarbage(opts?: { stillNeeded?: StillNeeded }): Promise<CollectGarbageResult>
  removeDeadScratch(): Promise<number>
}

// `@types/cacache` leaves out rm.entry's options; cacache 20 takes `{ removeFully }`.
type RemoveEntry = (
  cachePath: string,
  key: string,
  opts: { removeFully: boolean },
) => Promise<unknown>

async function removeIndexEntry(cachePath: string, key: string, opts: { removeFully: boolean }) {
  return ((await loadCacache()).rm.entry as RemoveEntry)(cachePath, key, opts)
}

/** cacache's own integrity failures (EINTEGRITY) become ours; anything else that is not ours is STORE_ERROR. */
function translate(error: unknown, integrity: string, action: string): PatchBackupError {
  if (error instanceof PatchBackupError) return error
  if (errorCode(error) === 'EINTEGRITY') {
    const found = (error as { found?: unknown; sri?: unknown }).found
    const mismatch = integrityMismatch(
      integrity,
      found === undefined ? 'different bytes' : String(found),
    )
    Object.defineProperty(mismatch, 'cause', { value: error, configurable: true, writable: true })
    return mismatch
  }
  return asStoreError(error, action)
}

const READ_CHUNK = 1024 * 1024

/**
 * Buffers up to this size are stored with synchronous calls. Writing 1 MiB to the page cache
 * takes well under a millisecond, so the event loop stays responsive; larger ones stream.
 */
const SYNC_PUT_BYTES = 1024 * 1024

/** A stream of the file behind `handle` that fails with INTEGRITY_MISMATCH unless the bytes hash to `integrity`. */
async function readVerified(
  handle: FileHandle,
  integrity: string,
  verifying: VerifyingStream,
): Promise<Readable> {
  let size: number
  try {
    size = (await handle.stat()).size
  } catch (error) {
    await handle.close().catch(() => {})
    throw translate(error, integrity, 'read stored bytes')
  }
  // A read stream allocates a whole highWaterMark per read: one just over the size reads a small
  // file in one go, and 1 MiB reads (the default is 64 KiB) let a large one keep up with the disk
  // and the hash. The stream closes the handle at its end or when destroyed.
  const source = handle.createReadStream({ highWaterMark: Math.min(size + 1, READ_CHUNK) })
  source.on('error', (error) => verifying.destroy(translate(error, integrity, 'read stored bytes')))
  verifying.on('close', () => source.destroy())
  source.pipe(verifying)
  return verifying
}

async function lookUp(cachePath: string, key: string) {
  // memoize: false, so an entry another caller memoized in this process cannot shadow the disk.
  return (await loadCacache()).get.info(cachePath, key, { memoize: false })
}

/**
 * A `BackupStore` on a cacache directory, compatible with stores written by plain `cacache.put`
 * (`content-v2/sha256/…` content, `index-v5/…` index). Keys are opaque strings.
 */
export function createCacacheStore(options: CacacheStoreOptions): CacacheStore {
  if (typeof options?.path !== 'string' || options.path.length === 0) {
    throw new PatchBackupError(
      'INVALID_OPTIONS',
      'createCacacheStore needs { path }: the cacache directory to use.',
    )
  }
  const cachePath = resolve(options.path)
  // One operation per key at a time in this process (so two removes of one key do not both say true).
  const perKey = new KeyedQueue()
  // Before the first write: marks a brand-new store's reference index complete (references.ts).
  let fresh: Promise<void> | undefined
  const addressable = (integrity: string) => {
    try {
      contentPathFor(cachePath, integrity)
      return true
    } catch {
      return false
    }
  }

  async function put(key: string, data: Readable | Uint8Array): Promise<PutResult> {
    if (!fresh) {
      fresh = references.markIfEmpty(cachePath).catch(() => {
        fresh = undefined // not marked: the first reference check scans instead
      })
    }
    await fresh
    if (data instanceof Uint8Array && data.byteLength <= SYNC_PUT_BYTES) return putSmall(key, data)
    const tmp = tmpPathFor(cachePath)
    try {
      const result = await writeTemp(tmp, data)
      const target = contentPathFor(cachePath, result.integrity)
      // The ref goes in before the entry, so that no live entry is ever without one (references.ts).
      await references.add(cachePath, result.integrity, key)
      await placeContent(cachePath, tmp, target, result.size)
      await indexEntries.append(cachePath, key, result)
      // A remove of this key in another process may have unlinked the ref between the two: link it again.
      await references.add(cachePath, result.integrity, key)
      // The entry is visible now; a remover that parked these bytes before seeing it may not put them
      // back, so re-link them from the scratch file (see the protocol in content.ts).
      await ensureContent(cachePath, tmp, target, result.size)
      return result
    } catch (error) {
      throw asStoreError(error, `store ${key} in ${cachePath}`)
    } finally {
      await removeScratch(tmp)
    }
  }

  /**
   * `put` of bytes in memory, in the same steps and order as the streaming put, with synchronous
   * calls: about twelve system calls and no thread-pool round trip in the common case.
   */
  async function putSmall(key: string, data: Uint8Array): Promise<PutResult> {
    const tmp = tmpPathFor(cachePath)
    try {
      const result = writeTempSync(tmp, data)
      const target = contentPathFor(cachePath, result.integrity)
      references.addSync(cachePath, result.integrity, key)
      await placeContentSync(cachePath, tmp, target, result.size)
      await indexEntries.append(cachePath, key, result)
      references.addSync(cachePath, result.integrity, key)
      await ensureContentSync(cachePath, tmp, target, result.size)
      return result
    } catch (error) {
      throw asStoreError(error, `store ${key} in ${cachePath}`)
    } finally {
      removeScratchSync(tmp)
    }
  }

  async function open(key: string, integrity: string): Promise<Readable | undefined> {
    // Unsupported or malformed integrity strings fail here with INTEGRITY_MISMATCH.
    const verifying = new VerifyingStream(integrity)
    let handle: FileHandle | undefined
    try {
      contentPathFor(cachePath, integrity)
    } catch {
      return undefined // well formed but impossible (e.g. a digest of the wrong length): nothing holds it
    }
    try {
      handle = await openContent(cachePath, integrity)
    } catch (error) {
      throw translate(error, integrity, `open the bytes of ${key}`)
    }
    if (!handle) return undefined
    return readVerified(handle, integrity, verifying)
  }

  /**
   * The content of `integrity` read with synchronous calls (open, fstat, read, close) and checked,
   * when it is at most `maxBytes`; `undefined` sends the caller to `open` (which also reads content
   * a remover has parked for a moment).
   */
  function readWhole(key: string, integrity: string, maxBytes: number): Buffer | undefined {
    let file: string
    try {
      file = contentPathFor(cachePath, integrity)
    } catch {
      return undefined
    }
    let fd: number
    try {
      // Without blocking: a fifo in the content's place must not hold the event loop.
      fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK)
    } catch {
      return undefined
    }
    let bytes: Buffer
    try {
      const info = fstatSync(fd)
      if (!info.isFile() || info.size > maxBytes) return undefined // `open` says what is wrong
      const size = info.size
      bytes = Buffer.allocUnsafe(size)
      let filled = 0
      while (filled < size) {
        const read = readSync(fd, bytes, filled, size - filled, filled)
        if (read === 0) break
        filled += read
      }
      bytes = bytes.subarray(0, filled)
    } catch (error) {
      throw translate(error, integrity, `read the stored bytes of ${key}`)
    } finally {
      closeSync(fd)
    }
    verifyBytes(bytes, integrity)
    return bytes
  }

  /** The bytes `key` holds now (for store decorators, which know only the original's integrity). */
  async function openKey(key: string): Promise<Readable | undefined> {
    let entry: Awaited<ReturnType<typeof lookUp>>
    try {
      entry = await lookUp(cachePath, key)
    } catch (error) {
      throw asStoreError(error, `look up ${key}`)
    }
    if (!entry?.integrity || !addressable(entry.integrity)) return undefined
    return open(key, entry.integrity)
  }

  async function has(key: string): Promise<boolean> {
    try {
      const entry = await lookUp(cachePath, key)
      if (!entry?.integrity) return false
      try {
        contentPathFor(cachePath, entry.integrity)
      } catch {
        return false
      }
      return await contentExists(cachePath, entry.integrity)
    } catch (error) {
      throw asStoreError(error, `look up ${key}`)
    }
  }

  async function remove(key: string, opts: RemoveOptions = {}): Promise<boolean> {
    try {
      const entry = await lookUp(cachePath, key)
      if (!entry) return false
      // removeFully deletes the key's bucket file instead of appending a tombstone, so buckets do not grow.
      await removeIndexEntry(cachePath, key, { removeFully: true })
      if (!entry.integrity || !addressable(entry.integrity)) return true // nothing we can find to free
      await references.remove(cachePath, entry.integrity, key)
      // A put of this key in another process may have landed between the two and must keep its ref.
      const now = await lookUp(cachePath, key)
      if (now?.integrity && addressable(now.integrity)) {
        await references.add(cachePath, now.integrity, key)
      }
      // A manifest may record these bytes although its key was re-pointed: `stillNeeded` keeps them.
      // It is asked only for bytes no other key references.
      if (opts.freeContent) {
        await freeContentIfUnreferenced(cachePath, entry.integrity, opts.stillNeeded)
      }
      return true
    } catch (error) {
      throw asStoreError(error, `remove ${key}`)
    }
  }

  async function* keys(prefix: string): AsyncGenerator<string> {
    try {
      for await (const entry of listIndexEntries(cachePath)) {
        if (entry.key.startsWith(prefix)) yield entry.key
      }
    } catch (error) {
      throw asStoreError(error, 'list keys')
    }
  }

  return {
    path: cachePath,
    verifiesReads: true,
    put: (key, data) => perKey.run(key, () => put(key, data)),
    open,
    readWhole,
    openKey,
    has,
    remove: (key, opts) => perKey.run(key, () => remove(key, opts)),
    keys,
    collectGarbage: (opts) => collectGarbage(cachePath, { stillNeeded: opts?.stillNeeded }),
    removeDeadScratch: () => removeDeadScratch(cachePath),
  }
}
