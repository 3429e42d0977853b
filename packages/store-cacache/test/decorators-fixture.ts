import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { StoreFixture } from '@patch-backup/conformance'
import type { BackupStore, PutResult } from '@patch-backup/core'
import { contentPathFor, createCacacheStore } from '@patch-backup/store-cacache'

export interface DecoratedFixture extends StoreFixture {
  cachePath: string
  /** The integrities cacache holds for the bytes of `integrity` (the original's). */
  storedOf(integrity: string): string[]
  cleanup: () => Promise<void>
}

/**
 * A decorated store over a cacache store on a fresh temp dir. The suite's hooks name the original
 * integrity; the decorators store other bytes under other integrities, so the fixture records
 * which cacache blobs each original became and reaches under the decorators to those.
 */
export async function createDecoratedFixture(
  decorate: (store: BackupStore) => BackupStore,
): Promise<DecoratedFixture> {
  const root = await mkdtemp(join(tmpdir(), 'patch-backup-decorated-'))
  const cachePath = join(root, '_cacache')
  const cacache = createCacacheStore({ path: cachePath })
  const storedByKey = new Map<string, string>()
  // Record what cacache stores under each key; the decorators call it as their inner store.
  const recording: BackupStore = Object.assign(Object.create(null), cacache, {
    async put(key: string, data: Parameters<BackupStore['put']>[1]): Promise<PutResult> {
      const result = await cacache.put(key, data)
      storedByKey.set(key, result.integrity)
      return result
    },
  })
  const decorated = decorate(recording)
  const storedByOriginal = new Map<string, Set<string>>()
  const store: BackupStore = Object.assign(Object.create(null), decorated, {
    async put(key: string, data: Parameters<BackupStore['put']>[1]): Promise<PutResult> {
      const result = await decorated.put(key, data)
      const stored = storedByKey.get(key)
      if (stored) {
        const set = storedByOriginal.get(result.integrity) ?? new Set()
        set.add(stored)
        storedByOriginal.set(result.integrity, set)
      }
      return result
    },
  })
  const storedOf = (integrity: string) => [...(storedByOriginal.get(integrity) ?? [])]
  const files = (integrity: string) => storedOf(integrity).map((i) => contentPathFor(cachePath, i))
  const exists = (file: string) =>
    stat(file).then(
      () => true,
      () => false,
    )
  return {
    store,
    cachePath,
    storedOf,
    async corrupt(integrity) {
      for (const file of files(integrity)) {
        const bytes = await readFile(file)
        const middle = Math.floor(bytes.length / 2)
        bytes[middle] = (bytes[middle] ?? 0) ^ 0xff
        await writeFile(file, bytes)
      }
    },
    async lose(integrity) {
      for (const file of files(integrity)) await rm(file, { force: true })
    },
    async holdsContent(integrity) {
      for (const file of files(integrity)) if (await exists(file)) return true
      return false
    },
    async cleanup() {
      await rm(root, { recursive: true, force: true })
    },
  }
}
