import { randomBytes } from 'node:crypto'
import { isBrokenBytesError } from '../errors.js'
import type { BackupInfo, BackupStore, PatchManifest } from '../types.js'
import { backupKey, pinKey, pinPrefix } from './layout.js'

/*
 * Pin keys. An `overwrite` re-points a file's backup key at new bytes before its manifest moves on,
 * and other patches' cleanups free bytes by keys alone (asking every manifest would make a cleanup
 * cost the whole store). So the overwrite first pins the bytes the manifest records under a pin
 * key of its own, and releases it once the manifest records the new bytes. A pin whose overwrite
 * failed or was killed stays while its file is in the manifest: `gc` keeps it (`isLivePin`), so
 * the recorded bytes always keep a key. A kept pin may hold bytes the manifest has moved past
 * (killed between the manifest write and the release): garbage, one pin per overwrite that failed
 * in its store write or manifest write (or was killed there), which the first `gc` after the patch
 * is cleaned up or pruned frees. Pins are made only once the source is open and the quota allows
 * the write, so an overwrite refused before that leaves none.
 */

/**
 * Pins the recorded bytes of `entry`; resolves the pin key, or `undefined` when there is nothing
 * to protect (the bytes are gone or corrupt: the overwrite is then the repair). Any other failure
 * rejects: an overwrite that cannot protect the recorded bytes must not move the key.
 */
export async function pinRecorded(
  store: BackupStore,
  uuid: string,
  entry: BackupInfo,
): Promise<string | undefined> {
  const pin = pinKey(uuid, entry.originalPath, randomBytes(6).toString('hex'))
  let bytes: Awaited<ReturnType<BackupStore['open']>>
  try {
    bytes = await store.open(backupKey(uuid, entry.originalPath), entry.integrity)
    if (!bytes) return undefined
    await store.put(pin, bytes)
    return pin
  } catch (error) {
    bytes?.destroy()
    if (isBrokenBytesError(error)) return undefined
    throw error
  }
}

/**
 * Releases pins once the manifest records the new bytes, freeing the replaced bytes unless another
 * key holds them (another patch that backed up the same bytes has its own key; a patch whose
 * manifest and key disagree has its own pin).
 */
export async function unpin(store: BackupStore, pins: string[]): Promise<void> {
  await Promise.all(pins.map((pin) => store.remove(pin, { freeContent: true }).catch(() => false)))
}

/** Whether `key` is a pin of a file the manifest still records: `gc` keeps those. */
export function isLivePin(uuid: string, manifest: PatchManifest | undefined, key: string): boolean {
  return Object.keys(manifest?.files ?? {}).some((file) => key.startsWith(pinPrefix(uuid, file)))
}

/** The pin keys of one file (none when the store cannot list keys). */
export async function pinsOf(store: BackupStore, uuid: string, fileKey: string): Promise<string[]> {
  if (!store.keys) return []
  const pins: string[] = []
  for await (const key of store.keys(pinPrefix(uuid, fileKey))) pins.push(key)
  return pins
}
