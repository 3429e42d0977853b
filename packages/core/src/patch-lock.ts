import type { ManifestRepository, ManifestTransaction, WithLockOptions } from './types.js'

/**
 * Runs `task` under the patch's cross-process lock (`ManifestRepository.withLock`). A repository
 * without one gets the best `update` can do: the task sees a read that may be stale by the time
 * it writes, and each write is applied to the manifest as it is then.
 */
export function lockPatch<T>(
  manifests: ManifestRepository,
  uuid: string,
  task: (tx: ManifestTransaction) => Promise<T>,
  options?: WithLockOptions,
): Promise<T> {
  if (manifests.withLock) return manifests.withLock(uuid, task, options)
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
      async verify() {},
    })
  })()
}
