import type { ManifestRepository, ManifestTransaction } from './types.js'

/**
 * Runs `task` under the patch's cross-process lock (`ManifestRepository.withLock`). A repository
 * without one gets the best `update` can do: the task sees a read that may be stale by the time
 * it writes, and each write is applied to the manifest as it is then.
 */
export function lockPatch<T>(
  manifests: ManifestRepository,
  uuid: string,
  task: (tx: ManifestTransaction) => Promise<T>,
): Promise<T> {
  if (manifests.withLock) return manifests.withLock(uuid, task)
  return (async () => {
    let current = await manifests.get(uuid)
    return task({
      get current() {
        return current
      },
      async update(fn) {
        current = await manifests.update(uuid, fn)
        return current
      },
    })
  })()
}
