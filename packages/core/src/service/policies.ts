import type { KeyedQueue } from '../keyed-queue.js'
import { createQuota, type Quota, type StorageLimits } from '../policies/limits.js'
import { createPruner, type PruneOptions, type PruneResult } from '../policies/prune.js'
import { createAutoRetention, type RetentionPolicy } from '../policies/retention.js'
import type { BackupStore, ManifestRepository } from '../types.js'
import type { PatchBackups } from './service.js'

export interface ServicePoliciesDeps {
  store: BackupStore
  manifests: ManifestRepository
  now: () => Date
  concurrency: number
  /** The service's per-patch queue: prune removes a patch only as that patch's one mutation. */
  queue: KeyedQueue
  limits?: StorageLimits
  retention?: RetentionPolicy
}

/** The service's storage policies: `prune`, size limits, automatic retention. */
export interface ServicePolicies {
  /** Present when `limits` were given; storeFile reserves room through it. */
  quota: Quota | undefined
  prune(options: PruneOptions): Promise<PruneResult>
  /** Makes `createBackup` / `createBackups` run automatic retention after they succeed. */
  wrap(service: PatchBackups): PatchBackups
}

export function createServicePolicies(deps: ServicePoliciesDeps): ServicePolicies {
  const { queue } = deps
  let quota: Quota | undefined
  const pruner = createPruner({
    ...deps,
    exclusive: (uuid, task, skipBusy) =>
      skipBusy && queue.has(uuid) ? undefined : queue.run(uuid, task),
    onRemoved: (uuid) => quota?.forget(uuid),
  })
  if (deps.limits) {
    quota = createQuota({
      limits: deps.limits,
      manifests: deps.manifests,
      concurrency: deps.concurrency,
      // Called from inside the backup's own queue slot: busy patches are skipped, never awaited.
      makeRoom: async (uuid, maxTotalBytes) => {
        const scope = { exclude: new Set([uuid]), skipBusy: true }
        // Remove nothing in vain: if all that may go would not make room, refuse as it is.
        const plan = await pruner.prune({ maxTotalBytes, dryRun: true }, scope)
        if (plan.remainingBytes > maxTotalBytes) return plan
        return pruner.prune({ maxTotalBytes }, scope)
      },
    })
  }
  const auto =
    deps.retention &&
    createAutoRetention({
      policy: deps.retention,
      now: deps.now,
      prune: (options, scope) => pruner.prune(options, scope),
    })

  return {
    quota,
    prune: (options) => pruner.prune(options),
    wrap(service) {
      if (!auto) return service
      const { createBackup, createBackups } = service
      service.createBackup = async (uuid, filePath, options) => {
        const info = await createBackup(uuid, filePath, options)
        await auto.afterBackup(uuid)
        return info
      }
      service.createBackups = async (uuid, filePaths, options) => {
        const result = await createBackups(uuid, filePaths, options)
        if (result.backedUp.length > 0) await auto.afterBackup(uuid)
        return result
      }
      return service
    },
  }
}
