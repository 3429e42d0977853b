import { PatchBackupError } from '../errors.js'
import { KeyedQueue } from '../keyed-queue.js'
import type { ManifestRepository, PatchManifest } from '../types.js'
import { parseUuid } from '../uuid.js'

export interface MemoryManifestRepository extends ManifestRepository {
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

  return {
    async get(uuid) {
      return read(parseUuid(uuid))
    },
    async update(uuid, fn) {
      const id = parseUuid(uuid)
      return queue.run(id, async () => {
        const current = read(id)
        const next = fn(current)
        if (next === current) return current
        if (next === undefined) manifests.delete(id)
        else manifests.set(id, JSON.stringify(next))
        return read(id)
      })
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
}
