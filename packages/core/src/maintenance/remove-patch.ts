import pMap from 'p-map'
import { lockPatch } from '../patch-lock.js'
import { storeKeysOf } from '../restore/journal.js'
import type {
  BackupStore,
  ManifestRepository,
  PatchManifest,
  StillNeeded,
  WithLockOptions,
} from '../types.js'

export interface RemovePatchDeps {
  store: BackupStore
  manifests: ManifestRepository
  concurrency: number
}

export interface RemovedPatch {
  /** The manifest that was removed; `undefined` when there was none or `accept` refused it. */
  removed?: PatchManifest
  /** The manifest `accept` refused (it changed since it was judged). */
  kept?: PatchManifest
  /** Keys the store could not free, with why: `gc` reclaims them later. */
  failures: string[]
}

/**
 * Removes a patch: the manifest, then every store key it kept alive, all under the patch's lock.
 * A backup of the patch in another process puts its key only under that lock too, so it either
 * finished before (and `accept` sees it) or starts after, with no manifest, and puts its key anew:
 * no key a manifest records is ever removed. Manifest first: a crash between the two leaves keys
 * no manifest records, which `gc` frees; never a manifest without its bytes.
 */
export async function removePatch(
  deps: RemovePatchDeps,
  uuid: string,
  accept: (current: PatchManifest) => boolean = () => true,
  stillNeeded?: StillNeeded,
  options?: WithLockOptions,
): Promise<RemovedPatch> {
  const { store, manifests, concurrency } = deps
  return lockPatch(
    manifests,
    uuid,
    async (tx) => {
      const current = tx.current
      if (!current) return { failures: [] }
      if (!accept(current)) return { kept: current, failures: [] }
      await tx.update(() => undefined)
      const failures: string[] = []
      await pMap(
        storeKeysOf(uuid, current),
        async (key) => {
          // A lock lost to a stall would let a backup record this key meanwhile: stop instead.
          await tx.verify()
          try {
            await store.remove(key, { freeContent: true, stillNeeded })
          } catch (error) {
            failures.push(`${key}: ${error instanceof Error ? error.message : String(error)}`)
          }
        },
        { concurrency },
      )
      return { removed: current, failures }
    },
    options,
  )
}
