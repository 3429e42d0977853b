import { randomBytes } from 'node:crypto'
import { readdir } from 'node:fs/promises'
import { runBackupStoreSuite, runServiceSuite } from '@patch-backup/conformance'
import {
  type BackupStore,
  createMemoryManifestRepository,
  isCompressionSupported,
  isPatchBackupError,
  withCompression,
  withEncryption,
} from '@patch-backup/core'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createDecoratedFixture, type DecoratedFixture } from './decorators-fixture.js'

const key = randomBytes(32)
const gzip = { algorithm: 'gzip' } as const
const decorators = {
  'withCompression(gzip)': (s: BackupStore) => withCompression(s, gzip),
  'withCompression(brotli)': (s: BackupStore) => withCompression(s, { algorithm: 'brotli' }),
  // zstd where this Node's zlib has it (22.15+); CI runs this file on 20, 22 and 24.
  ...(isCompressionSupported('zstd')
    ? { 'withCompression(zstd)': (s: BackupStore) => withCompression(s, { algorithm: 'zstd' }) }
    : {}),
  withEncryption: (s: BackupStore) => withEncryption(s, { key }),
  'withCompression(withEncryption(…))': (s: BackupStore) =>
    withCompression(withEncryption(s, { key }), gzip),
}

for (const [name, decorate] of Object.entries(decorators)) {
  runBackupStoreSuite(`${name} over cacache`, () => createDecoratedFixture(decorate))
}

runServiceSuite('compression + encryption over cacache, memory manifests', async () => {
  const store = await createDecoratedFixture(decorators['withCompression(withEncryption(…))'])
  const repo = createMemoryManifestRepository()
  return { store, manifests: { repo, corrupt: (uuid: string) => repo.corrupt(uuid) } }
})

describe('decorators over cacache', () => {
  let fx: DecoratedFixture
  afterEach(() => fx.cleanup())

  it.skipIf(isCompressionSupported('zstd'))(
    'zstd where zlib has none: UNSUPPORTED before anything is stored',
    async () => {
      fx = await createDecoratedFixture((s) => s)
      const { store, cachePath } = fx
      expect(() => withCompression(store, { algorithm: 'zstd' })).toThrow(
        expect.objectContaining({ code: 'UNSUPPORTED' }),
      )
      expect(await readdir(cachePath).catch(() => [])).toEqual([])
    },
  )

  describe('encryption', () => {
    let cacache: BackupStore
    beforeEach(async () => {
      fx = await createDecoratedFixture((store) => {
        cacache = store
        return withEncryption(store, { key })
      })
    })

    it('a rotted cacache blob fails as INTEGRITY_MISMATCH', async () => {
      const { integrity } = await fx.store.put('k', randomBytes(300_000))
      await fx.corrupt?.(integrity)
      const failure = await readFailure(await fx.store.open('k', integrity))
      expect(isPatchBackupError(failure, 'INTEGRITY_MISMATCH')).toBe(true)
    })

    it('a wrong key fails as DECRYPT_FAILED', async () => {
      const { integrity } = await fx.store.put('k', Buffer.from('secret bytes'))
      const other = withEncryption(cacache, { key: randomBytes(32) })
      const failure = await readFailure(await other.open('k', integrity))
      expect(isPatchBackupError(failure, 'DECRYPT_FAILED')).toBe(true)
    })
  })

  it('compression keeps content addressing: identical originals share one cacache blob', async () => {
    fx = await createDecoratedFixture(decorators['withCompression(gzip)'])
    const bytes = Buffer.from('x'.repeat(100_000))
    const a = await fx.store.put('a', bytes)
    const b = await fx.store.put('b', bytes)
    expect(a).toEqual(b)
    expect(fx.storedOf(a.integrity)).toHaveLength(1)
    expect(a.storedSize).toBeLessThan(1000)
  })
})

async function readFailure(stream: NodeJS.ReadableStream | undefined): Promise<unknown> {
  if (!stream) throw new Error('expected a stream')
  try {
    for await (const _ of stream) {
      // drain
    }
  } catch (error) {
    return error
  }
  return undefined
}
