import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { Readable } from 'node:stream'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import {
  type BackupStore,
  createMemoryManifestRepository,
  createPatchBackups,
  PatchBackupError,
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

describe('restores from a store that verifies its reads', () => {
  it('stop at the recorded size: an oversized blob is not written out in full first', async () => {
    const trusting = createTrustingStore()
    const MIB = 1024 * 1024
    let pulled = 0
    // What a verifying store gives for a tampered or bomb-like blob: endless bytes, and an
    // integrity error only once the stream ends.
    const bloated: BackupStore = {
      ...trusting,
      verifiesReads: true,
      open: async () =>
        Readable.from(
          (async function* () {
            for (let i = 0; i < 256; i++) {
              pulled += MIB
              yield Buffer.alloc(MIB)
            }
            throw new PatchBackupError('INTEGRITY_MISMATCH', 'no match')
          })(),
        ),
    }
    const backups = createPatchBackups({
      store: bloated,
      manifests: createMemoryManifestRepository(),
      cwd: dir,
    })
    await writeFile(path.join(dir, 'a.js'), 'original bytes')
    await backups.createBackup('u-1', 'a.js')
    await writeFile(path.join(dir, 'a.js'), 'patched')

    await expect(backups.restoreBackup('u-1', 'a.js')).rejects.toMatchObject({
      code: 'INTEGRITY_MISMATCH',
    })
    // The stream is cut at the first chunk past 14 bytes (a few more may be read ahead).
    expect(pulled).toBeLessThanOrEqual(4 * MIB)
    await expect(readFile(path.join(dir, 'a.js'), 'utf8')).resolves.toBe('patched')
    expect(await readdir(dir)).toEqual(['a.js'])
  })
})
