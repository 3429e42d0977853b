import { randomBytes } from 'node:crypto'
import { Readable } from 'node:stream'
import { type BackupStore, isPatchBackupError, sha256Integrity } from '@patch-backup/core'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { Factory, StoreFixture } from './fixtures.js'
import { readStream } from './read-stream.js'

const KEY_A = 'socket:patch:backup:suite-a:0123456789abcdef'
const KEY_B = 'socket:patch:backup:suite-b:0123456789abcdef'

function failingStream(afterBytes: number): Readable {
  let sent = false
  return new Readable({
    read() {
      if (!sent) {
        sent = true
        this.push(Buffer.alloc(afterBytes, 1))
      } else this.destroy(new Error('disk read failed'))
    },
  })
}

/** The behaviour every `BackupStore` must have. Call it from the adapter's test file. */
export function runBackupStoreSuite(name: string, factory: Factory<StoreFixture>): void {
  describe(`BackupStore conformance: ${name}`, () => {
    let fixture: StoreFixture
    let store: BackupStore
    beforeEach(async () => {
      fixture = await factory()
      store = fixture.store
    })
    afterEach(async () => {
      await fixture.cleanup?.()
    })

    describe('put and open', () => {
      it('returns the sha256 integrity and size of the bytes', async () => {
        const bytes = Buffer.from('original bytes\n')
        // toMatchObject: a decorated store adds `storedSize` (the bytes it keeps after encoding).
        await expect(store.put(KEY_A, bytes)).resolves.toMatchObject({
          integrity: sha256Integrity(bytes),
          size: bytes.length,
        })
      })

      it('gives the same integrity for a stream as for the same bytes', async () => {
        const bytes = randomBytes(300_000)
        const fromStream = await store.put(
          KEY_A,
          Readable.from([bytes.subarray(0, 1000), bytes.subarray(1000)]),
        )
        expect(fromStream).toMatchObject({ integrity: sha256Integrity(bytes), size: bytes.length })
      })

      it('opens exactly the bytes that were put', async () => {
        const bytes = randomBytes(5 * 1024 * 1024)
        const { integrity } = await store.put(KEY_A, Readable.from([bytes]))
        const stream = await store.open(KEY_A, integrity)
        expect(stream).toBeDefined()
        expect((await readStream(stream!)).equals(bytes)).toBe(true)
      })

      it('round-trips an empty file', async () => {
        const { integrity, size } = await store.put(KEY_A, new Uint8Array(0))
        expect(size).toBe(0)
        expect((await readStream((await store.open(KEY_A, integrity))!)).length).toBe(0)
      })

      it('opens nothing for unknown content', async () => {
        await expect(store.open(KEY_A, sha256Integrity('never stored'))).resolves.toBeUndefined()
      })

      it('rejects a put whose source stream fails, and keeps no key for it', async () => {
        await expect(store.put(KEY_A, failingStream(64 * 1024))).rejects.toThrow()
        await expect(store.has(KEY_A)).resolves.toBe(false)
      })

      it('takes 50 concurrent puts under different keys', async () => {
        const blobs = Array.from({ length: 50 }, (_, i) => Buffer.from(`blob ${i}`))
        const results = await Promise.all(blobs.map((b, i) => store.put(`${KEY_A}-${i}`, b)))
        for (const [i, r] of results.entries()) expect(r.integrity).toBe(sha256Integrity(blobs[i]!))
        for (let i = 0; i < 50; i++) await expect(store.has(`${KEY_A}-${i}`)).resolves.toBe(true)
      })
    })

    describe('has and remove', () => {
      it('knows which keys it holds', async () => {
        await store.put(KEY_A, Buffer.from('a'))
        await expect(store.has(KEY_A)).resolves.toBe(true)
        await expect(store.has(KEY_B)).resolves.toBe(false)
      })

      it('removes a key once and says whether it was there', async () => {
        await store.put(KEY_A, Buffer.from('a'))
        await expect(store.remove(KEY_A)).resolves.toBe(true)
        await expect(store.has(KEY_A)).resolves.toBe(false)
        await expect(store.remove(KEY_A)).resolves.toBe(false)
      })

      it('frees the bytes when the last key goes', async () => {
        const { integrity } = await store.put(KEY_A, Buffer.from('only mine'))
        await store.remove(KEY_A, { freeContent: true })
        await expect(store.open(KEY_A, integrity)).resolves.toBeUndefined()
        if (fixture.holdsContent) await expect(fixture.holdsContent(integrity)).resolves.toBe(false)
      })

      it('keeps bytes another key still references', async () => {
        const bytes = Buffer.from('shared between two patches')
        const { integrity } = await store.put(KEY_A, bytes)
        await store.put(KEY_B, bytes)
        await store.remove(KEY_A, { freeContent: true })
        await expect(store.has(KEY_B)).resolves.toBe(true)
        expect((await readStream((await store.open(KEY_B, integrity))!)).equals(bytes)).toBe(true)
        await store.remove(KEY_B, { freeContent: true })
        await expect(store.open(KEY_B, integrity)).resolves.toBeUndefined()
      })

      it('frees bytes a re-pointed key held once the last key that holds them goes', async () => {
        const old = Buffer.from('the bytes before an overwrite')
        const { integrity } = await store.put(KEY_A, old)
        await store.put(KEY_B, old)
        // KEY_A moves on to other bytes: it no longer holds the old ones.
        await store.put(KEY_A, Buffer.from('the bytes after it'))
        await store.remove(KEY_B, { freeContent: true })
        // A store that stored the old bytes twice (encryption: a fresh nonce per put) frees
        // KEY_A's copy, which no key holds any more, in its garbage collection.
        await store.collectGarbage?.()
        await expect(store.open(KEY_B, integrity)).resolves.toBeUndefined()
        if (fixture.holdsContent) await expect(fixture.holdsContent(integrity)).resolves.toBe(false)
        await expect(store.has(KEY_A)).resolves.toBe(true)
      })

      it('never frees bytes a concurrent put of another key needs', async () => {
        const bytes = Buffer.from('raced content')
        for (let round = 0; round < 20; round++) {
          const { integrity } = await store.put(KEY_A, bytes)
          await Promise.all([store.remove(KEY_A, { freeContent: true }), store.put(KEY_B, bytes)])
          const stream = await store.open(KEY_B, integrity)
          expect(stream, `round ${round}`).toBeDefined()
          expect((await readStream(stream!)).equals(bytes)).toBe(true)
          await store.remove(KEY_B, { freeContent: true })
        }
      })

      it('opens by key the bytes the key holds now, when it can', async (ctx) => {
        if (!store.openKey) ctx.skip()
        const first = randomBytes(70_000)
        const second = Buffer.from('replaced')
        await expect(store.openKey!(KEY_A)).resolves.toBeUndefined()
        await store.put(KEY_A, first)
        expect((await readStream((await store.openKey!(KEY_A))!)).equals(first)).toBe(true)
        await store.put(KEY_A, second)
        expect((await readStream((await store.openKey!(KEY_A))!)).equals(second)).toBe(true)
        await store.remove(KEY_A, { freeContent: true })
        await expect(store.openKey!(KEY_A)).resolves.toBeUndefined()
      })

      it('lists keys by prefix when it can', async (ctx) => {
        if (!store.keys) ctx.skip()
        await store.put(`${KEY_A}1`, Buffer.from('1'))
        await store.put(`${KEY_A}2`, Buffer.from('2'))
        await store.put(KEY_B, Buffer.from('3'))
        const found: string[] = []
        for await (const key of store.keys!('socket:patch:backup:suite-a:')) found.push(key)
        expect(found.sort()).toEqual([`${KEY_A}1`, `${KEY_A}2`])
      })
    })

    describe('damage', () => {
      it('fails the stream with INTEGRITY_MISMATCH when stored bytes rot', async (ctx) => {
        if (!fixture.corrupt) ctx.skip()
        const { integrity } = await store.put(KEY_A, randomBytes(100_000))
        await fixture.corrupt!(integrity)
        const stream = await store.open(KEY_A, integrity)
        const failure = await readStream(stream!).then(
          () => undefined,
          (error: unknown) => error,
        )
        expect(isPatchBackupError(failure, 'INTEGRITY_MISMATCH')).toBe(true)
      })

      it('reports lost bytes as absent', async (ctx) => {
        if (!fixture.lose) ctx.skip()
        const { integrity } = await store.put(KEY_A, Buffer.from('soon gone'))
        await fixture.lose!(integrity)
        await expect(store.open(KEY_A, integrity)).resolves.toBeUndefined()
        await expect(store.has(KEY_A)).resolves.toBe(false)
      })
    })
  })
}
