import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import {
  type BackupStore,
  createMemoryManifestRepository,
  createPatchBackups,
  withCompression,
} from '../src/index.js'
import { createTrustingStore } from './policy-helpers.js'

/** A store that hands out whatever it holds, checked against nothing: what a careless adapter does. */
function createUncheckedStore(): BackupStore & { tamperAll(): void } {
  const trusting = createTrustingStore()
  return {
    ...trusting,
    open: (key) => trusting.openKey?.(key) ?? Promise.resolve(undefined),
    tamperAll() {
      for (const key of trusting.bytes.keys()) {
        trusting.edit(key, (copy) => {
          copy[0] = (copy[0] ?? 0) ^ 0xff
          return copy
        })
      }
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
