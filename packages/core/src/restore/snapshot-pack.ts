// Snapshot packs: the small targets an all-or-nothing restore replaces, kept in a few store blobs
// instead of one blob each. A blob per file cost four to six new inodes (scratch file, shard
// directories, index bucket), which at 4 KiB made the snapshots four fifths of the restore.
// Each packed snapshot names its pack and keeps its own integrity, so undo checks its slice too.

import { asStoreError, PatchBackupError } from '../errors.js'
import { integrityMismatch, verifyBytes } from '../integrity.js'
import type { BackupStore } from '../types.js'
import type { Snapshot, SnapshotPack } from './journal.js'

/** A target up to this size goes into a pack (larger ones get a blob of their own). */
export const PACKABLE_BYTES = 256 * 1024
/** A pack is stored once it holds this many bytes. */
const PACK_BYTES = 1024 * 1024
/** The largest pack a reader accepts: a manifest is anyone's to edit, and a pack is read whole. */
export const MAX_PACK_BYTES = PACK_BYTES + PACKABLE_BYTES

export interface PackableTarget {
  bytes: Buffer
  /** The integrity `hashCurrentFile` gave these bytes. */
  integrity: string
  mode: number
}

/**
 * Stores `targets` in packs (keys from `keyOf(n)`, in order) and resolves each one's snapshot.
 * A failed put leaves the packs stored before it; they are in `stored` for the caller to free.
 */
export async function storePacks(
  store: BackupStore,
  targets: readonly PackableTarget[],
  keyOf: (n: number) => string,
  stored: string[] = [],
): Promise<Snapshot[]> {
  const snapshots: Snapshot[] = []
  let start = 0
  while (start < targets.length) {
    let end = start
    let bytes = 0
    while (end < targets.length && (end === start || bytes < PACK_BYTES)) {
      bytes += (targets[end] as PackableTarget).bytes.length
      end++
    }
    const group = targets.slice(start, end)
    const key = keyOf(stored.length)
    let put: { integrity: string; size: number }
    try {
      put = await store.put(
        key,
        Buffer.concat(
          group.map((t) => t.bytes),
          bytes,
        ),
      )
    } catch (error) {
      throw asStoreError(error, 'keep the snapshots of the files before restoring them')
    }
    stored.push(key)
    let offset = 0
    for (const t of group) {
      const pack: SnapshotPack = { integrity: put.integrity, size: put.size, offset }
      snapshots.push({ integrity: t.integrity, size: t.bytes.length, mode: t.mode, key, pack })
      offset += t.bytes.length
    }
    start = end
  }
  return snapshots
}

/**
 * The packs one undo or recovery read last, by integrity (the bytes are checked against it). A
 * restore fills its packs in the order undo and recovery go through its files, so a few suffice;
 * the bound keeps a hand-edited manifest naming thousands of packs from holding them all.
 */
export type PackCache = Map<string, Promise<Buffer>>
const CACHED_PACKS = 4

/**
 * A packed snapshot's bytes, checked against the snapshot's own integrity. `key` is the pack's
 * store key (already confined to the patch). A pack that a hand-edited manifest makes too large,
 * or a slice outside it, is refused before anything is read.
 */
export async function packedBytes(
  store: BackupStore,
  key: string,
  snapshot: Snapshot,
  cache: PackCache,
): Promise<Buffer> {
  // Anything may stand here in a hand-edited manifest: `null`, a string, numbers out of range.
  const pack = (snapshot.pack ?? {}) as SnapshotPack
  const { offset, size } = pack
  const sane =
    typeof pack.integrity === 'string' &&
    Number.isSafeInteger(size) &&
    size >= 0 &&
    size <= MAX_PACK_BYTES &&
    Number.isSafeInteger(offset) &&
    offset >= 0 &&
    Number.isSafeInteger(snapshot.size) &&
    snapshot.size >= 0 &&
    offset + snapshot.size <= size
  if (!sane) {
    throw new PatchBackupError(
      'INVALID_MANIFEST',
      `The manifest names a snapshot pack ${key} with offset ${String(offset)} and size ${String(size)}, which no restore writes. Nothing was touched; the snapshot cannot be used.`,
    )
  }
  let whole = cache.get(pack.integrity)
  if (whole)
    cache.delete(pack.integrity) // set again below: the least recently used goes first
  else {
    whole = readPack(store, key, pack)
    // A failed read is not kept: another key may name the same bytes where they can be read.
    whole.catch(() => cache.get(pack.integrity) === whole && cache.delete(pack.integrity))
  }
  cache.set(pack.integrity, whole)
  if (cache.size > CACHED_PACKS) cache.delete(cache.keys().next().value as string)
  const slice = (await whole).subarray(offset, offset + snapshot.size)
  verifyBytes(slice, snapshot.integrity, snapshot.size)
  return slice
}

async function readPack(store: BackupStore, key: string, pack: SnapshotPack): Promise<Buffer> {
  // readWhole checks the bytes against the integrity; only their count is left to check.
  const whole = store.readWhole?.(key, pack.integrity, MAX_PACK_BYTES)
  if (whole) {
    if (whole.length !== pack.size) verifyBytes(whole, pack.integrity, pack.size)
    return whole
  }
  let stream: Awaited<ReturnType<BackupStore['open']>>
  try {
    stream = await store.open(key, pack.integrity)
  } catch (error) {
    throw asStoreError(error, `read the snapshot pack ${key}`)
  }
  if (!stream) {
    throw new PatchBackupError(
      'BLOB_MISSING',
      `The snapshot pack ${key} (${pack.integrity}) is gone from the store, so what the restore replaced cannot be put back. Run 'patch-backup verify' to check the rest.`,
    )
  }
  const chunks: Buffer[] = []
  let length = 0
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    length += chunk.length
    if (length > pack.size) {
      stream.destroy()
      throw integrityMismatch(pack.integrity, `more than ${pack.size} bytes`, length)
    }
    chunks.push(chunk)
  }
  const bytes = Buffer.concat(chunks, length)
  // A store that verifies what it streams has checked the bytes; only their count is left.
  if (!store.verifiesReads || length !== pack.size) verifyBytes(bytes, pack.integrity, pack.size)
  return bytes
}
