import { backupKey, pinKey } from './backup-key.js'
import { isPatchBackupError } from './errors.js'
import type { BackupInfo, BackupStore, PatchManifest } from './types.js'

/*
 * Pin keys. An `overwrite` re-points a file's backup key at new bytes before its manifest moves on,
 * and other patches' cleanups free bytes by keys alone (asking every manifest would make a cleanup
 * cost the whole store). So the bytes the manifest still records are pinned under a pin key
 * first, and the pin goes once the manifest records the new bytes. A pin that a failed manifest
 * write or a crash leaves behind is repaired by gc (`releaseOrphanPin`).
 */

/** Pins the recorded bytes of `entries`; resolves the pin keys to release. */
export async function pinRecorded(
  store: BackupStore,
  uuid: string,
  entries: BackupInfo[],
): Promise<string[]> {
  const pins: string[] = []
  for (const entry of entries) {
    const pin = pinKey(uuid, entry.originalPath)
    try {
      const bytes = await store.open(backupKey(uuid, entry.originalPath), entry.integrity)
      if (!bytes) continue // already gone: nothing to protect
      await store.put(pin, bytes)
      pins.push(pin)
    } catch {
      // Corrupt recorded bytes: the overwrite is the repair, nothing worth pinning.
    }
  }
  return pins
}

/**
 * Releases pins once the manifest records the new bytes, freeing the replaced bytes unless another
 * key holds them (another patch that backed up the same bytes has its own key; a patch whose
 * manifest and key disagree has its own pin).
 */
export async function unpin(store: BackupStore, pins: string[]): Promise<void> {
  await Promise.all(pins.map((pin) => store.remove(pin, { freeContent: true }).catch(() => false)))
}

/**
 * Before gc drops a pin no running overwrite holds: if the manifest may still record the pinned
 * bytes (the overwrite's manifest write failed or was killed), the file's backup key is pointed
 * back at them, so they keep a key once the pin is gone. Resolves whether the pin may go: not when
 * the pin holds the recorded bytes and the key could not be pointed back (a full disk, say).
 */
export async function settleOrphanPin(
  store: BackupStore,
  uuid: string,
  manifest: PatchManifest | undefined,
  pin: string,
): Promise<boolean> {
  const file = Object.keys(manifest?.files ?? {}).find((f) => pinKey(uuid, f) === pin)
  const entry = file === undefined ? undefined : manifest?.files[file]
  if (file === undefined || !entry) return true
  try {
    const bytes = await store.open(pin, entry.integrity)
    if (!bytes) return true // the recorded bytes are gone already; verify reports them
    // Re-putting bytes the key already points at changes nothing, so no need to tell the cases apart.
    await store.put(backupKey(uuid, file), bytes)
    return true
  } catch (error) {
    // The pin holds other bytes: the manifest had moved on before the pin was released.
    return isPatchBackupError(error, 'INTEGRITY_MISMATCH')
  }
}
