import { PatchBackupError } from '../errors.js'
import { KeyedQueue } from '../keyed-queue.js'
import type {
  ManifestRepository,
  ManifestTransaction,
  PatchManifest,
  WithLockOptions,
} from '../types.js'
import { parseUuid } from '../uuid.js'

export interface MemoryManifestRepository extends ManifestRepository {
  withLock<T>(
    uuid: string,
    task: (tx: ManifestTransaction) => Promise<T>,
    options?: WithLockOptions,
  ): Promise<T>
  /** Test hook: damages the stored manifest of `uuid` as a torn write would. */
  corrupt(uuid: string): void
}

/** A `ManifestRepository` in memory. Manifests are stored as JSON, so callers never share objects. */
export function createMemoryManifestRepository(): MemoryManifestRepository {
  const manifests = new Map<string, string>()
  const queue = new KeyedQueue()
  const read = (uuid: string): PatchManifest | undefined => {
    const json = manifests.get(uuid)
    if (json === undefined) return undefined
    try {
      return JSON.parse(json) as PatchManifest
    } catch (error) {
      throw new PatchBackupError(
        'MANIFEST_CORRUPT',
        `The manifest of patch ${uuid} (memory) is not valid JSON. Remove it with cleanup, or restore it from a copy.`,
        { cause: error, path: `memory:${uuid}` },
      )
    }
  }

  const write = (uuid: string, next: PatchManifest | undefined) => {
    if (next === undefined) manifests.delete(uuid)
    else manifests.set(uuid, JSON.stringify(next))
    return read(uuid)
  }

  const repository: MemoryManifestRepository = {
    async get(uuid) {
      return read(parseUuid(uuid))
    },
    async withLock(uuid, task, options = {}) {
      const id = parseUuid(uuid)
      if (options.ifFree && queue.has(id)) {
        throw new PatchBackupError('PATCH_BUSY', `Patch ${id} is being written; it was left alone.`)
      }
      return queue.run(id, () => {
        let current = read(id)
        return task({
          get current() {
            return current
          },
          async update(fn) {
            const next = fn(current)
            if (next !== current) current = write(id, next)
            return current
          },
          async verify() {},
        })
      })
    },
    update(uuid, fn) {
      return repository.withLock(uuid, (tx) => tx.update(fn))
    },
    async delete(uuid) {
      const id = parseUuid(uuid)
      return queue.run(id, async () => manifests.delete(id))
    },
    async list() {
      return [...manifests.keys()].sort()
    },
    corrupt(uuid) {
      const json = manifests.get(uuid)
      if (json !== undefined) manifests.set(uuid, json.slice(0, Math.floor(json.length / 2)))
    },
  }
  return repository
}
