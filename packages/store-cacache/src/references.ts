import { createHash } from 'node:crypto'
import { linkSync, mkdirSync, readFile as readFileCallback, writeFileSync } from 'node:fs'
import { link, mkdir, readdir, stat, unlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { contentAddress, contentPathFor, INDEX_DIR } from './paths.js'

// One open/read/close: fs/promises' readFile takes more thread-pool round trips.
const readFile = promisify(readFileCallback)

/**
 * The reference index: which keys point at a content, without scanning the whole cacache index.
 *
 * ```
 * patch-backup-refs-v1/
 * ├── complete                                 the index covers every entry (see below)
 * └── <algorithm>/<hex[0:2]>/
 *     ├── .token                               an empty file; every ref is a hard link to it
 *     └── <content hex>.<sha256(key) hex>      "key may point at this content"
 * ```
 * A ref is a hint, never the truth: the key's own cacache bucket (`index-v5/…`, found from the
 * hash in the ref's name) says whether the key still points at the content. So a stale ref (a
 * crash before the entry was written, a key removed or re-pointed by plain cacache) costs one
 * bucket read and never keeps bytes alive. What must hold is the other direction: every live
 * entry written by this store has its ref. `put` links the ref before it appends the entry, and
 * links it again after (see `store.ts`), so a concurrent `remove` of the same key in another
 * process, which unlinks the ref, cannot leave a live entry without one.
 *
 * Refs are hard links to one token file per shard, because on the file systems we measured
 * creating an inode costs 10-30x a link; a file system without hard links (or a token at its
 * link limit) gets empty files instead. cacache never looks in this directory, so plain cacache
 * reads and writes the store as before.
 *
 * `complete` exists once every live entry has a ref: written when the store is created empty,
 * or by `ensureComplete` after one scan of a store that plain cacache (or an older version of
 * this package) wrote. Until then, reference checks fall back to the full scan. Entries that
 * plain cacache writes after that are not seen (see the README).
 */
export const REFS_DIR = 'patch-backup-refs-v1'
const COMPLETE = 'complete'
const TOKEN = '.token'

/** Hard links are not available on every file system; these codes mean "write a file instead". */
const NO_LINKS = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS', 'EXDEV', 'EMLINK'])

function code(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | undefined)?.code
}

export function keyHash(key: string): string {
  return createHash('sha256').update(key).digest('hex')
}

function shardOf(cachePath: string, integrity: string): { dir: string; hex: string } {
  const { algorithm, hex } = contentAddress(integrity)
  return { dir: join(cachePath, REFS_DIR, algorithm, hex.slice(0, 2)), hex }
}

/** The ref file of `key -> integrity`. */
export function refPathFor(cachePath: string, integrity: string, key: string): string {
  const { dir, hex } = shardOf(cachePath, integrity)
  return join(dir, `${hex}.${keyHash(key)}`)
}

async function ensureShard(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true })
  await writeFile(join(dir, TOKEN), '', { flag: 'wx' }).catch((error) => {
    if (code(error) !== 'EEXIST') throw error
  })
}

/** Records that `key` may point at `integrity`. Idempotent; costs one `link` once the shard exists. */
async function add(cachePath: string, integrity: string, key: string): Promise<void> {
  const { dir, hex } = shardOf(cachePath, integrity)
  const ref = join(dir, `${hex}.${keyHash(key)}`)
  const token = join(dir, TOKEN)
  for (let attempt = 0; ; attempt++) {
    try {
      await link(token, ref)
      return
    } catch (error) {
      const c = code(error)
      if (c === 'EEXIST') return
      if (c === 'ENOENT' && attempt === 0) {
        await ensureShard(dir)
        continue
      }
      if (!NO_LINKS.has(c ?? '')) throw error
      await writeFile(ref, '', { flag: 'w' })
      return
    }
  }
}

/** `add` with synchronous calls (one `link` once the shard exists), for the small-file put. */
function addSync(cachePath: string, integrity: string, key: string): void {
  const { dir, hex } = shardOf(cachePath, integrity)
  const ref = join(dir, `${hex}.${keyHash(key)}`)
  const token = join(dir, TOKEN)
  for (let attempt = 0; ; attempt++) {
    try {
      linkSync(token, ref)
      return
    } catch (error) {
      const c = code(error)
      if (c === 'EEXIST') return
      if (c === 'ENOENT' && attempt === 0) {
        mkdirSync(dir, { recursive: true })
        try {
          writeFileSync(join(dir, TOKEN), '', { flag: 'wx' })
        } catch (error) {
          if (code(error) !== 'EEXIST') throw error
        }
        continue
      }
      if (!NO_LINKS.has(c ?? '')) throw error
      writeFileSync(ref, '', { flag: 'w' })
      return
    }
  }
}

/** Forgets the ref of `key -> integrity` (nothing if there is none). */
async function remove(cachePath: string, integrity: string, key: string): Promise<void> {
  await unlink(refPathFor(cachePath, integrity, key)).catch((error) => {
    if (code(error) !== 'ENOENT') throw error
  })
}

/** The key hashes of every ref of `integrity`. */
async function refsOf(cachePath: string, integrity: string): Promise<string[]> {
  const { dir, hex } = shardOf(cachePath, integrity)
  const prefix = `${hex}.`
  let names: string[]
  try {
    names = await readdir(dir)
  } catch (error) {
    if (code(error) === 'ENOENT') return []
    throw error
  }
  return names.filter((n) => n.startsWith(prefix)).map((n) => n.slice(prefix.length))
}

function samePlace(cachePath: string, a: string, b: string): boolean {
  try {
    return contentPathFor(cachePath, a) === contentPathFor(cachePath, b)
  } catch {
    return false
  }
}

/**
 * Whether the bucket of the key hashing to `hash` has a live entry pointing at `integrity`: the
 * last well-formed line wins, as in cacache's own `index.find` (a `null` integrity is a tombstone).
 */
async function bucketPointsAt(
  cachePath: string,
  hash: string,
  integrity: string,
): Promise<boolean> {
  if (!/^[0-9a-f]{64}$/.test(hash)) return false
  let text: string
  try {
    text = await readFile(
      join(cachePath, INDEX_DIR, hash.slice(0, 2), hash.slice(2, 4), hash.slice(4)),
      'utf8',
    )
  } catch (error) {
    if (code(error) === 'ENOENT' || code(error) === 'ENOTDIR') return false
    throw error
  }
  const lines = text.split('\n')
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = lines[i] as string
    const tab = line.indexOf('\t')
    if (tab < 0) continue
    const json = line.slice(tab + 1)
    if (createHash('sha1').update(json).digest('hex') !== line.slice(0, tab)) continue
    let entry: { key?: unknown; integrity?: unknown }
    try {
      entry = JSON.parse(json)
    } catch {
      continue
    }
    if (typeof entry.key !== 'string' || keyHash(entry.key) !== hash) continue
    return typeof entry.integrity === 'string' && samePlace(cachePath, entry.integrity, integrity)
  }
  return false
}

/** Whether a live entry written through the index points at `integrity` (the index must be complete). */
async function referencedByIndex(cachePath: string, integrity: string): Promise<boolean> {
  for (const hash of await refsOf(cachePath, integrity)) {
    if (await bucketPointsAt(cachePath, hash, integrity)) return true
  }
  return false
}

const completeStores = new Set<string>()
const building = new Map<string, Promise<boolean>>()

async function isComplete(cachePath: string): Promise<boolean> {
  if (completeStores.has(cachePath)) return true
  const there = await stat(join(cachePath, REFS_DIR, COMPLETE)).then(
    () => true,
    () => false,
  )
  if (there) completeStores.add(cachePath)
  return there
}

async function markComplete(cachePath: string): Promise<void> {
  await mkdir(join(cachePath, REFS_DIR), { recursive: true })
  await writeFile(
    join(cachePath, REFS_DIR, COMPLETE),
    `${JSON.stringify({ version: 1, at: new Date().toISOString() })}\n`,
  )
  completeStores.add(cachePath)
}

/**
 * Called before the first write of a store instance: a store with no index yet is complete by
 * definition (every entry will come through `add`), so it is marked without a scan.
 */
async function markIfEmpty(cachePath: string): Promise<void> {
  if (await isComplete(cachePath)) return
  const hasIndex = await stat(join(cachePath, INDEX_DIR)).then(
    () => true,
    () => false,
  )
  if (!hasIndex) await markComplete(cachePath)
}

/**
 * Makes the index complete, scanning the cacache index once if it is not: refs for every live
 * entry, then the `complete` marker. Resolves false when that cannot be done (a read-only store),
 * and the caller falls back to the scan. Safe to run in several processes at once: refs are
 * idempotent, and a ref for an entry removed meanwhile is only stale.
 */
async function ensureComplete(
  cachePath: string,
  entries: (cachePath: string) => AsyncIterable<{ key: string; integrity: string }>,
): Promise<boolean> {
  if (await isComplete(cachePath)) return true
  let pending = building.get(cachePath)
  if (!pending) {
    pending = (async () => {
      try {
        for await (const entry of entries(cachePath)) {
          try {
            contentAddress(entry.integrity)
          } catch {
            continue // an integrity we cannot file content under references nothing
          }
          await add(cachePath, entry.integrity, entry.key)
        }
        await markComplete(cachePath)
        return true
      } catch {
        return false
      } finally {
        building.delete(cachePath)
      }
    })()
    building.set(cachePath, pending)
  }
  return pending
}

/**
 * The steps, as an object rather than loose functions so that a test can interpose on one of
 * them (the race tests run a `put` between a remover's two reference checks).
 */
export const references = {
  add,
  addSync,
  remove,
  refsOf,
  bucketPointsAt,
  referencedByIndex,
  isComplete,
  markIfEmpty,
  ensureComplete,
}
