import { mkdtemp, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { StoreFixture } from '@patch-backup/conformance'
import { type CacacheStore, contentPathFor, createCacacheStore } from '../src/index.js'

export interface CacacheFixture extends StoreFixture {
  store: CacacheStore
  /** The `_cacache` directory of this fixture's store. */
  cachePath: string
  corrupt: (integrity: string) => Promise<void>
  lose: (integrity: string) => Promise<void>
  holdsContent: (integrity: string) => Promise<boolean>
  /** Cuts the stored content of `integrity` down to its first half. */
  truncate: (integrity: string) => Promise<void>
  cleanup: () => Promise<void>
}

/** A cacache store on a fresh temp dir, with hooks that reach under it to the content files. */
export async function createCacacheFixture(): Promise<CacacheFixture> {
  const root = await mkdtemp(join(tmpdir(), 'patch-backup-cacache-'))
  const cachePath = join(root, '_cacache')
  const store = createCacacheStore({ path: cachePath })
  const fileOf = (integrity: string) => contentPathFor(cachePath, integrity)
  return {
    store,
    cachePath,
    async corrupt(integrity) {
      const file = fileOf(integrity)
      const bytes = await readFile(file)
      if (bytes.length === 0) {
        await writeFile(file, Buffer.from([0]))
        return
      }
      const middle = Math.floor(bytes.length / 2)
      bytes[middle] = (bytes[middle] ?? 0) ^ 0xff
      await writeFile(file, bytes)
    },
    async lose(integrity) {
      await rm(fileOf(integrity), { force: true })
    },
    async holdsContent(integrity) {
      return stat(fileOf(integrity)).then(
        () => true,
        () => false,
      )
    },
    async truncate(integrity) {
      const file = fileOf(integrity)
      const { size } = await stat(file)
      await truncate(file, Math.floor(size / 2))
    },
    async cleanup() {
      await rm(root, { recursive: true, force: true })
    },
  }
}
