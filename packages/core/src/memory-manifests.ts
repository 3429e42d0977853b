import { KeyedQueue } from './keyed-queue.js'
import type { ManifestRepository, PatchManifest } from './types.js'
import { parseUuid } from './uuid.js'

/** A `ManifestRepository` in memory. Manifests are stored as JSON, so callers never share objects. */
export function createMemoryManifestRepository(): ManifestRepository {
  const manifests = new Map<string, string>()
  const queue = new KeyedQueue()
  const read = (uuid: string): PatchManifest | undefined => {
    const json = manifests.get(uuid)
    return json === undefined ? undefined : (JSON.parse(json) as PatchManifest)
  }

  return {
    async get(uuid) {
      return read(parseUuid(uuid))
    },
    update(uuid, fn) {
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
    delete(uuid) {
      const id = parseUuid(uuid)
      return queue.run(id, async () => manifests.delete(id))
    },
    async list() {
      return [...manifests.keys()].sort()
    },
  }
}
