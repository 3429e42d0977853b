import { randomBytes } from 'node:crypto'
import { Readable } from 'node:stream'
import { describe, expect, it } from 'vitest'
import {
  createMemoryStore,
  isCompressionSupported,
  isPatchBackupError,
  sha256Integrity,
  withCompression,
} from '../src/index.js'
import { compressible, createTrustingStore, failureOf, readAll } from './policy-helpers.js'

const KEY = 'socket:patch:backup:c-1:0123456789abcdef'
const OTHER = 'socket:patch:backup:c-2:0123456789abcdef'

/** Where Node's zlib has zstd: 22.15+ on line 22, 23.8+, and every later line. */
function nodeShipsZstd(version = process.versions.node): boolean {
  const [major = 0, minor = 0] = version.split('.').map(Number)
  return major >= 24 || (major === 23 && minor >= 8) || (major === 22 && minor >= 15)
}
const zstdHere = isCompressionSupported('zstd')
/** Every algorithm this Node compresses with: CI runs this file on Node 20, 22 and 24. */
const algorithms = (['gzip', 'brotli', 'zstd'] as const).filter(isCompressionSupported)

/** A blob as withCompression({ algorithm: 'zstd' }) stored it on Node 24: header, then the frame. */
const ZSTD_PLAIN = Buffer.from('module.exports = function add(a, b) { return a + b }\n'.repeat(50))
const ZSTD_STORED = Buffer.from(
  'UEJaAQMAAAAotS/9AFj1AQBUA21vZHVsZS5leHBvcnRzID0gZnVuY3Rpb24gYWRkKGEsIGIpIHsgcmV0dXJuIGEgKyBiIH0KAQAlIuwrKA==',
  'base64',
)

describe('zstd support', () => {
  it('is detected exactly on the Node versions whose zlib has it', () => {
    expect(nodeShipsZstd('20.20.2')).toBe(false)
    expect(nodeShipsZstd('22.14.0')).toBe(false)
    expect(nodeShipsZstd('22.15.0')).toBe(true)
    expect(nodeShipsZstd('24.0.0')).toBe(true)
    // So a Node that should have zstd can never quietly take the "unsupported" branches below.
    expect(zstdHere).toBe(nodeShipsZstd())
  })

  it.runIf(!zstdHere)(
    'where zlib has none: UNSUPPORTED at construction, naming the Node needed',
    () => {
      for (const options of [
        { algorithm: 'zstd' } as const,
        { algorithm: 'zstd', level: 3 } as const,
      ]) {
        expect(() => withCompression(createMemoryStore(), options)).toThrow(
          expect.objectContaining({
            code: 'UNSUPPORTED',
            message: expect.stringContaining(
              `Node ${process.versions.node}: zlib's zstd arrived in Node 22.15`,
            ),
          }),
        )
      }
    },
  )

  it('reads a blob stored with zstd on a newer Node, or fails with UNSUPPORTED where zlib has none', async () => {
    const inner = createMemoryStore()
    await inner.put(KEY, ZSTD_STORED)
    // Reading needs no zstd in the options: the blob's header names its method.
    const store = withCompression(inner, { algorithm: 'gzip' })
    const integrity = sha256Integrity(ZSTD_PLAIN)
    if (zstdHere) {
      expect((await readAll(await store.open(KEY, integrity))).equals(ZSTD_PLAIN)).toBe(true)
      return
    }
    const failure = await failureOf(readAll(await store.open(KEY, integrity)))
    expect(isPatchBackupError(failure, 'UNSUPPORTED')).toBe(true)
    expect((failure as Error).message).toContain('read a backup compressed with zstd')
  })
})

describe('withCompression', () => {
  it.each(algorithms)(
    '%s: round-trips and reports the original integrity and size',
    async (algorithm) => {
      const inner = createMemoryStore()
      const store = withCompression(inner, { algorithm })
      for (const bytes of [compressible(1000), compressible(3 * 1024 * 1024, 7)]) {
        const result = await store.put(
          KEY,
          Readable.from([bytes.subarray(0, 100), bytes.subarray(100)]),
        )
        expect(result.integrity).toBe(sha256Integrity(bytes))
        expect(result.size).toBe(bytes.length)
        expect(result.storedSize).toBeLessThan(bytes.length / 2)
        expect((await readAll(await store.open(KEY, result.integrity))).equals(bytes)).toBe(true)
      }
    },
  )

  it('stores data that does not compress raw, behind the 8-byte header', async () => {
    const inner = createMemoryStore()
    const store = withCompression(inner, { algorithm: 'gzip' })
    for (const bytes of [randomBytes(1000), randomBytes(1024 * 1024)]) {
      const result = await store.put(KEY, bytes)
      expect(result.storedSize).toBe(bytes.length + 8)
      const stored = await readAll(await inner.openKey?.(KEY))
      expect(stored.subarray(0, 5)).toEqual(Buffer.from([0x50, 0x42, 0x5a, 0x01, 0]))
      expect((await readAll(await store.open(KEY, result.integrity))).equals(bytes)).toBe(true)
    }
  })

  it('round-trips an empty file', async () => {
    const store = withCompression(createMemoryStore())
    const { integrity, size } = await store.put(KEY, new Uint8Array(0))
    expect(size).toBe(0)
    expect((await readAll(await store.open(KEY, integrity))).length).toBe(0)
  })

  it('stores identical originals identically, so the inner store keeps them once', async () => {
    const inner = createMemoryStore()
    const store = withCompression(inner, { algorithm: 'brotli' })
    const bytes = compressible(200_000, 3)
    const a = await store.put(KEY, bytes)
    const b = await store.put(OTHER, Readable.from([bytes]))
    expect(b).toEqual(a)
    expect(inner.blobCount).toBe(1)
  })

  it('reads bytes stored before compression was turned on', async () => {
    const inner = createMemoryStore()
    const bytes = compressible(5000)
    const { integrity } = await inner.put(KEY, bytes)
    const store = withCompression(inner)
    expect((await readAll(await store.open(KEY, integrity))).equals(bytes)).toBe(true)
  })

  it('finds undecorated bytes by integrity when the key holds nothing', async () => {
    const inner = createMemoryStore()
    const bytes = compressible(5000, 4)
    const { integrity } = await inner.put(OTHER, bytes)
    const store = withCompression(inner)
    expect((await readAll(await store.open(KEY, integrity))).equals(bytes)).toBe(true)
    await expect(store.open(KEY, sha256Integrity('nowhere'))).resolves.toBeUndefined()
  })

  it("with algorithm 'none' stores bytes as they are and still reads compressed ones", async () => {
    const inner = createMemoryStore()
    const compressed = compressible(10_000)
    const a = await withCompression(inner, { algorithm: 'gzip' }).put(KEY, compressed)
    const plain = withCompression(inner, { algorithm: 'none' })
    const bytes = compressible(10_000, 9)
    const b = await plain.put(OTHER, bytes)
    expect(b).toEqual({ integrity: sha256Integrity(bytes), size: bytes.length })
    expect((await readAll(await inner.open(OTHER, b.integrity))).equals(bytes)).toBe(true)
    expect((await readAll(await plain.open(KEY, a.integrity))).equals(compressed)).toBe(true)
  })

  it('fails with INTEGRITY_MISMATCH when compressed bytes are damaged', async () => {
    const inner = createTrustingStore()
    const store = withCompression(inner, { algorithm: 'gzip' })
    const bytes = compressible(500_000, 5)
    const { integrity } = await store.put(KEY, bytes)
    inner.edit(KEY, (b) => {
      b[Math.floor(b.length / 2)] = (b[Math.floor(b.length / 2)] as number) ^ 0xff
      return b
    })
    const failure = await failureOf(readAll(await store.open(KEY, integrity)))
    expect(isPatchBackupError(failure, 'INTEGRITY_MISMATCH')).toBe(true)
  })

  it('fails with INTEGRITY_MISMATCH (never other bytes) when the key now holds other content', async () => {
    const store = withCompression(createMemoryStore())
    const first = await store.put(KEY, compressible(1000, 1))
    await store.put(KEY, compressible(1000, 2))
    const failure = await failureOf(readAll(await store.open(KEY, first.integrity)))
    expect(isPatchBackupError(failure, 'INTEGRITY_MISMATCH')).toBe(true)
  })

  it('passes a source error on to the inner put and keeps no key', async () => {
    const inner = createMemoryStore()
    const store = withCompression(inner)
    let sent = false
    const source = new Readable({
      read() {
        if (sent) this.destroy(new Error('disk read failed'))
        else {
          sent = true
          this.push(compressible(100_000))
        }
      },
    })
    await expect(store.put(KEY, source)).rejects.toThrow('disk read failed')
    await expect(store.has(KEY)).resolves.toBe(false)
  })

  it('refuses bad options and stores without openKey', () => {
    expect(() => withCompression(createMemoryStore(), { algorithm: 'lz4' as 'gzip' })).toThrow(
      expect.objectContaining({ code: 'INVALID_OPTIONS' }),
    )
    expect(() => withCompression(createMemoryStore(), { algorithm: 'gzip', level: 12 })).toThrow(
      expect.objectContaining({ code: 'INVALID_OPTIONS' }),
    )
    const { openKey: _, ...noOpenKey } = createMemoryStore()
    expect(() => withCompression(noOpenKey)).toThrow(
      expect.objectContaining({ code: 'INVALID_OPTIONS' }),
    )
  })

  it.each(algorithms)(
    '%s: every level round-trips, out-of-range levels are refused',
    async (algorithm) => {
      const [min, max] = ({ gzip: [1, 9], brotli: [0, 11], zstd: [1, 22] } as const)[algorithm]
      const bytes = compressible(20_000, 6)
      for (const level of [min, max]) {
        const store = withCompression(createMemoryStore(), { algorithm, level })
        const { integrity, storedSize } = await store.put(KEY, bytes)
        expect(storedSize).toBeLessThan(bytes.length / 2)
        expect((await readAll(await store.open(KEY, integrity))).equals(bytes)).toBe(true)
      }
      for (const level of [min - 1, max + 1]) {
        expect(() => withCompression(createMemoryStore(), { algorithm, level })).toThrow(
          expect.objectContaining({ code: 'INVALID_OPTIONS' }),
        )
      }
    },
  )
})
