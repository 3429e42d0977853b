import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { Readable } from 'node:stream'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import {
  type BackupStore,
  createMemoryManifestRepository,
  createPatchBackups,
  sha256Integrity,
  withCompression,
} from '../src/index.js'

/** A store that hands out whatever it holds, checked against nothing: what a careless adapter does. */
function createUncheckedStore(): BackupStore & { tamperAll(): void } {
  const bytes = new Map<string, Buffer>()
  const read = async (data: Readable | Uint8Array) => {
    if (data instanceof Uint8Array) return Buffer.from(data)
    const chunks: Buffer[] = []
    for await (const chunk of data) chunks.push(Buffer.from(chunk))
    return Buffer.concat(chunks)
  }
  return {
    async put(key, data) {
      const stored = await read(data)
      bytes.set(key, stored)
      return { integrity: sha256Integrity(stored), size: stored.length }
    },
    async open(key) {
      const stored = bytes.get(key)
      return stored && Readable.from([stored])
    },
    async openKey(key) {
      const stored = bytes.get(key)
      return stored && Readable.from([stored])
    },
    async has(key) {
      return bytes.has(key)
    },
    async remove(key) {
      return bytes.delete(key)
    },
    tamperAll() {
      for (const stored of bytes.values()) stored[0] = (stored[0] ?? 0) ^ 0xff
    },
  }
}

let dir: string
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'pb-verify-'))
})
afterEach(() => rm(dir, { recursive: true, force: true }))

describe('restores from a store that does not say it verifies its reads', () => {
  it.each([
    ['the store itself', (store: BackupStore) => store],
    [
      'a compression layer over it',
      (store: BackupStore) => withCompression(store, { algorithm: 'none' }),
    ],
  ])('are checked by the service: %s', async (_, wrap) => {
    const unchecked = createUncheckedStore()
    const backups = createPatchBackups({
      store: wrap(unchecked),
      manifests: createMemoryManifestRepository(),
      cwd: dir,
    })
    await writeFile(path.join(dir, 'a.js'), 'original bytes')
    await backups.createBackup('u-1', 'a.js')
    await writeFile(path.join(dir, 'a.js'), 'patched')
    unchecked.tamperAll()

    await expect(backups.restoreBackup('u-1', 'a.js')).rejects.toMatchObject({
      code: 'INTEGRITY_MISMATCH',
    })
    await expect(readFile(path.join(dir, 'a.js'), 'utf8')).resolves.toBe('patched')
    expect(await readdir(dir)).toEqual(['a.js'])
  })
})
