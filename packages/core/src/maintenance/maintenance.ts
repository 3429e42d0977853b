// Maintenance: verify, repair and gc over every patch's keys, and which stored bytes are recorded.
// It never reads or writes project files; gc frees only keys and bytes no manifest references.

import { Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import pMap from 'p-map'
import { BROKEN_BYTES_CODES, PatchBackupError } from '../errors.js'
import { VerifyingStream } from '../integrity.js'
import { KeyedQueue } from '../keyed-queue.js'
import { lockPatch } from '../patch-lock.js'
import { storeKeysOf } from '../restore/journal.js'
import {
  BACKUP_KEY_PREFIX,
  backupKey,
  isYoungSnapshot,
  patchKeyPrefix,
} from '../store-keys/layout.js'
import { isLivePin, pinsOf } from '../store-keys/pins.js'
import type {
  BackupInfo,
  BackupStore,
  GcReport,
  ManifestRepository,
  PatchManifest,
  RepairReport,
  VerifyProblem,
  VerifyReport,
} from '../types.js'
import { parseUuid } from '../uuid.js'
import { recordedContent } from './recorded-content.js'

export interface Maintenance {
  /** Re-hashes every stored blob of one patch (or all) and reports what is corrupt or missing. */
  verify(uuid?: string): Promise<VerifyReport>
  /** `verify`, then drops the manifest entries whose bytes are gone or corrupt. Sound entries are not rewritten. */
  repair(uuid?: string): Promise<RepairReport>
  /** Frees store keys and bytes that no manifest references. */
  gc(): Promise<GcReport>
}

interface MaintenanceDeps {
  store: BackupStore
  manifests: ManifestRepository
  concurrency: number
  /** The service's per-patch queue: gc re-checks and frees a patch's keys inside it. */
  patchQueue?: KeyedQueue
}

const discard = () =>
  new Writable({
    write(_chunk, _enc, done) {
      done()
    },
  })

function describe(error: unknown): { code: string; message: string } {
  if (error instanceof PatchBackupError) return { code: error.code, message: error.message }
  return { code: 'STORE_ERROR', message: error instanceof Error ? error.message : String(error) }
}

export function createMaintenance({
  store,
  manifests,
  concurrency,
  patchQueue = new KeyedQueue(),
}: MaintenanceDeps): Maintenance {
  /**
   * The backup key's bytes, or else those of a pin an unfinished overwrite left (on a store that
   * reads by key, the backup key may already hold the overwrite's new bytes): either one whole
   * and matching the manifest, and the file is sound.
   */
  async function checkFile(
    uuid: string,
    path: string,
    entry: BackupInfo,
  ): Promise<VerifyProblem | undefined> {
    const problem = await checkKey(backupKey(uuid, path), uuid, path, entry)
    if (!problem || !BROKEN_BYTES_CODES.includes(problem.code)) return problem
    let pins: string[]
    try {
      pins = await pinsOf(store, uuid, path)
    } catch (error) {
      // Unsure whether a pin holds the bytes: not a verdict `repair` may act on.
      return { uuid, path, integrity: entry.integrity, ...describe(error) }
    }
    for (const pin of pins) {
      const pinned = await checkKey(pin, uuid, path, entry)
      if (!pinned) return undefined
      if (!BROKEN_BYTES_CODES.includes(pinned.code)) return pinned
    }
    return problem
  }

  async function checkKey(
    key: string,
    uuid: string,
    path: string,
    entry: BackupInfo,
  ): Promise<VerifyProblem | undefined> {
    try {
      const stream = await store.open(key, entry.integrity)
      if (!stream) {
        return {
          uuid,
          path,
          integrity: entry.integrity,
          code: 'BLOB_MISSING',
          message: `The stored bytes of ${path} (${entry.integrity}) are gone.`,
        }
      }
      await pipeline(stream, new VerifyingStream(entry.integrity, entry.size), discard())
      return undefined
    } catch (error) {
      return { uuid, path, integrity: entry.integrity, ...describe(error) }
    }
  }

  async function loadAll(uuid?: string) {
    const uuids = uuid === undefined ? await manifests.list() : [parseUuid(uuid)]
    const loaded: { uuid: string; manifest?: PatchManifest; problem?: VerifyProblem }[] = []
    for (const id of uuids) {
      try {
        loaded.push({ uuid: id, manifest: await manifests.get(id) })
      } catch (error) {
        loaded.push({ uuid: id, problem: { uuid: id, ...describe(error) } })
      }
    }
    return loaded
  }

  async function verify(uuid?: string): Promise<VerifyReport> {
    const report: VerifyReport = { patches: 0, files: 0, ok: 0, problems: [] }
    for (const { uuid: id, manifest, problem } of await loadAll(uuid)) {
      if (problem) {
        report.patches++
        report.problems.push(problem)
        continue
      }
      if (!manifest) continue
      report.patches++
      const paths = Object.keys(manifest.files).sort()
      const results = await pMap(paths, (p) => checkFile(id, p, manifest.files[p] as BackupInfo), {
        concurrency,
      })
      report.files += paths.length
      for (const result of results) {
        if (result) report.problems.push(result)
        else report.ok++
      }
    }
    return report
  }

  return {
    verify,

    async repair(uuid) {
      const report = await verify(uuid)
      const dropped: VerifyProblem[] = []
      const byPatch = new Map<string, VerifyProblem[]>()
      for (const problem of report.problems) {
        if (problem.path === undefined || !BROKEN_BYTES_CODES.includes(problem.code)) continue
        byPatch.set(problem.uuid, [...(byPatch.get(problem.uuid) ?? []), problem])
      }
      for (const [id, problems] of byPatch) {
        await manifests.update(id, (current) => {
          if (!current) return current
          const files = { ...current.files }
          for (const problem of problems) {
            // Drop only what was verified bad: an entry re-created since then is left alone.
            if (files[problem.path as string]?.integrity !== problem.integrity) continue
            delete files[problem.path as string]
            dropped.push(problem)
          }
          return { ...current, files }
        })
      }
      return { ...report, dropped }
    },

    async gc() {
      const report: GcReport = { removedKeys: 0, removedBlobs: 0, freedBytes: 0 }
      const loaded = await loadAll()
      // Bytes a manifest records stay even when no key points at them any more.
      const stillNeeded = recordedContent(loaded.map((l) => l.manifest))
      if (store.keys) {
        const live = new Set<string>()
        const untouchable: string[] = []
        for (const { uuid, manifest, problem } of loaded) {
          // A manifest we cannot read may still reference its keys: keep them all.
          if (problem) untouchable.push(patchKeyPrefix(uuid))
          for (const key of storeKeysOf(uuid, manifest)) live.add(key)
        }
        const orphans: string[] = []
        for await (const key of store.keys(BACKUP_KEY_PREFIX)) {
          if (!live.has(key) && !untouchable.some((prefix) => key.startsWith(prefix)))
            orphans.push(key)
        }
        const byPatch = new Map<string, string[]>()
        for (const key of orphans) {
          const uuid = key.slice(BACKUP_KEY_PREFIX.length, key.lastIndexOf(':'))
          byPatch.set(uuid, [...(byPatch.get(uuid) ?? []), key])
        }
        for (const [uuid, keys] of byPatch) {
          // Re-checked under the patch's lock, which every backup holds from its store write to its
          // manifest write: a key recorded meanwhile is seen, and none can be recorded while we remove.
          // Inside the patch's queue too, so this process's own backups of it finish first.
          report.removedKeys += await patchQueue.run(
            uuid,
            () =>
              lockPatch(manifests, uuid, async (tx) => {
                const manifest = tx.current
                let removed = 0
                for (const key of keys) {
                  if (storeKeysOf(uuid, manifest).includes(key)) continue
                  if (isLivePin(uuid, manifest, key)) continue
                  // A restore stores its snapshots before its manifest write records them.
                  if (isYoungSnapshot(key, Date.now())) continue
                  await tx.verify() // stalled past the lease: another may have recorded it since
                  // A store that can collect garbage frees (and counts) the bytes below, in one pass.
                  if (await store.remove(key, { freeContent: !store.collectGarbage, stillNeeded }))
                    removed++
                }
                return removed
              }).catch(() => 0), // unreadable now (a lock, a damaged file): keep everything of it
          )
        }
      }
      if (store.collectGarbage) {
        const freed = await store.collectGarbage({ stillNeeded })
        report.removedBlobs += freed.removedBlobs
        report.freedBytes += freed.freedBytes
      }
      return report
    },
  }
}
