import { type BackupStore, PatchBackupError } from '@patch-backup/core'

/**
 * A `BackupStore` that builds the real one at its first call. Commands that read only manifests
 * and files on disk (`list`, `info`, `status`) then never load cacache or the AWS SDK, which
 * are most of a start-up. `verifiesReads` must be known up front: it is the real store's.
 */
export function lazyStore(
  load: () => Promise<BackupStore>,
  traits: { verifiesReads?: boolean } = {},
): BackupStore & { loaded(): Promise<BackupStore> | undefined } {
  let loading: Promise<BackupStore> | undefined
  let ready: BackupStore | undefined
  const real = () => {
    loading ??= load().then((store) => {
      ready = store
      return store
    })
    return loading
  }
  return {
    verifiesReads: traits.verifiesReads,
    loaded: () => loading,
    put: async (key, data) => (await real()).put(key, data),
    open: async (key, integrity) => (await real()).open(key, integrity),
    // Synchronous, so only once the real store is there: until then, `open` loads it.
    readWhole: (key, integrity, maxBytes) => ready?.readWhole?.(key, integrity, maxBytes),
    has: async (key) => (await real()).has(key),
    remove: async (key, options) => (await real()).remove(key, options),
    openKey: async (key) => {
      const inner = await real()
      if (!inner.openKey) throw new PatchBackupError('STORE_ERROR', 'This store cannot open a key.')
      return inner.openKey(key)
    },
    keys(prefix) {
      return (async function* () {
        const inner = await real()
        if (inner.keys) yield* inner.keys(prefix)
      })()
    },
    collectGarbage: async (options) =>
      (await real()).collectGarbage?.(options) ?? { removedBlobs: 0, freedBytes: 0 },
    removeDeadScratch: async () => (await real()).removeDeadScratch?.() ?? 0,
  }
}
