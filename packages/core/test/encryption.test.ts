import { randomBytes } from 'node:crypto'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { Readable } from 'node:stream'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import {
  createMemoryStore,
  generateKey,
  isPatchBackupError,
  keyFromEnv,
  keyFromFile,
  keyFromPassphrase,
  keyId,
  readSaltFile,
  sha256Integrity,
  withCompression,
  withEncryption,
  withStoragePolicies,
} from '../src/index.js'
import { compressible, createTrustingStore, failureOf, readAll } from './policy-helpers.js'

const KEY = 'socket:patch:backup:e-1:0123456789abcdef'
const OTHER = 'socket:patch:backup:e-2:0123456789abcdef'
const FRAME = 64 * 1024
const HEADER = 56
const TAG = 16

describe('withEncryption', () => {
  const key = generateKey()

  const sizes = [0, 1, FRAME - 1, FRAME, FRAME + 1, 3 * FRAME, 1_000_003]
  const reads = [
    ['7777-byte reads', 7777],
    ['one read', Number.POSITIVE_INFINITY],
    ['frame-sized reads', FRAME + TAG],
  ] as const
  it.each(sizes.flatMap((size) => reads.map(([name, chunk]) => [size, name, chunk] as const)))(
    'round-trips %i bytes in authenticated frames (stored bytes read back in %s)',
    async (size, _name, chunk) => {
      const inner = createTrustingStore(chunk)
      const store = withEncryption(inner, { key })
      const bytes = randomBytes(size)
      const result = await store.put(KEY, Readable.from([bytes]))
      expect(result.integrity).toBe(sha256Integrity(bytes))
      expect(result.size).toBe(size)
      const frames = Math.max(1, Math.ceil(size / FRAME))
      expect(result.storedSize).toBe(HEADER + size + frames * TAG)
      const stored = inner.bytes.get(KEY) as Buffer
      // No 32-byte run of the plaintext shows in what is stored (shorter ones may, by chance).
      if (size >= 32) expect(stored.includes(bytes.subarray(size - 32))).toBe(false)
      expect((await readAll(await store.open(KEY, result.integrity))).equals(bytes)).toBe(true)
    },
  )

  it('encrypts identical files differently (the inner store no longer shares their bytes)', async () => {
    const inner = createMemoryStore()
    const store = withEncryption(inner, { key })
    const bytes = Buffer.from('same plaintext')
    const a = await store.put(KEY, bytes)
    const b = await store.put(OTHER, bytes)
    expect(a.integrity).toBe(b.integrity)
    expect(inner.blobCount).toBe(2)
  })

  it('fails with DECRYPT_FAILED under a wrong key, naming both key ids', async () => {
    const inner = createMemoryStore()
    const { integrity } = await withEncryption(inner, { key }).put(KEY, Buffer.from('secret'))
    const wrong = generateKey()
    const failure = await failureOf(
      readAll(await withEncryption(inner, { key: wrong }).open(KEY, integrity)),
    )
    expect(isPatchBackupError(failure, 'DECRYPT_FAILED')).toBe(true)
    expect((failure as Error).message).toContain(keyId(key))
    expect((failure as Error).message).toContain(keyId(wrong))
  })

  describe('tampering: INTEGRITY_MISMATCH with a DECRYPT_FAILED cause', () => {
    const bytes = randomBytes(3 * FRAME + 123)
    const cases: [string, (b: Buffer) => Buffer][] = [
      [
        'a flipped byte in a frame',
        (b) => {
          b[HEADER + FRAME + 10] = (b[HEADER + FRAME + 10] as number) ^ 1
          return b
        },
      ],
      [
        'a flipped byte in a tag',
        (b) => {
          b[b.length - 1] = (b[b.length - 1] as number) ^ 1
          return b
        },
      ],
      [
        'a flipped salt byte',
        (b) => {
          b[20] = (b[20] as number) ^ 1
          return b
        },
      ],
      ['the last frame cut off', (b) => b.subarray(0, HEADER + 3 * (FRAME + TAG))],
      ['a cut inside the last frame', (b) => b.subarray(0, b.length - 5)],
      [
        'two frames swapped',
        (b) => {
          const f = (i: number) =>
            b.subarray(HEADER + i * (FRAME + TAG), HEADER + (i + 1) * (FRAME + TAG))
          return Buffer.concat([
            b.subarray(0, HEADER),
            f(1),
            f(0),
            b.subarray(HEADER + 2 * (FRAME + TAG)),
          ])
        },
      ],
      ['the header cut short', (b) => b.subarray(0, 30)],
    ]
    it.each(cases)('%s', async (_name, change) => {
      const inner = createTrustingStore()
      const store = withEncryption(inner, { key })
      const { integrity } = await store.put(KEY, bytes)
      inner.edit(KEY, change)
      const failure = await failureOf(readAll(await store.open(KEY, integrity)))
      expect(isPatchBackupError(failure, 'INTEGRITY_MISMATCH')).toBe(true)
      expect(isPatchBackupError((failure as Error).cause, 'DECRYPT_FAILED')).toBe(true)
    })

    it('a frame moved from another blob under the same key', async () => {
      const inner = createTrustingStore()
      const store = withEncryption(inner, { key })
      const { integrity } = await store.put(KEY, bytes)
      await store.put(OTHER, bytes)
      const foreign = (inner.bytes.get(OTHER) as Buffer).subarray(HEADER, HEADER + FRAME + TAG)
      inner.edit(KEY, (b) =>
        Buffer.concat([b.subarray(0, HEADER), foreign, b.subarray(HEADER + FRAME + TAG)]),
      )
      const failure = await failureOf(readAll(await store.open(KEY, integrity)))
      expect(isPatchBackupError(failure, 'INTEGRITY_MISMATCH')).toBe(true)
    })
  })

  it('refuses bytes stored before encryption unless allowPlaintext', async () => {
    const inner = createMemoryStore()
    const bytes = Buffer.from('stored in clear before encryption was on')
    const { integrity } = await inner.put(KEY, bytes)
    const strict = await failureOf(
      readAll(await withEncryption(inner, { key }).open(KEY, integrity)),
    )
    expect(isPatchBackupError(strict, 'DECRYPT_FAILED')).toBe(true)
    expect((strict as Error).message).toContain('allowPlaintext')
    const lenient = withEncryption(inner, { key, allowPlaintext: true })
    expect((await readAll(await lenient.open(KEY, integrity))).equals(bytes)).toBe(true)
  })

  it('refuses a key that is not 32 bytes', () => {
    expect(() => withEncryption(createMemoryStore(), { key: new Uint8Array(16) })).toThrow(
      expect.objectContaining({ code: 'INVALID_KEY' }),
    )
  })
})

describe('stacking compression and encryption', () => {
  const key = generateKey()
  const bytes = compressible(1024 * 1024, 11)

  it.each([
    [
      'withCompression(withEncryption(store))',
      (s: ReturnType<typeof createTrustingStore>) =>
        withCompression(withEncryption(s, { key }), { algorithm: 'gzip' }),
    ],
    [
      'withEncryption(withCompression(store)), rebuilt in that order',
      (s: ReturnType<typeof createTrustingStore>) =>
        withEncryption(withCompression(s, { algorithm: 'gzip' }), { key }),
    ],
    [
      'withStoragePolicies(store, …)',
      (s: ReturnType<typeof createTrustingStore>) =>
        withStoragePolicies(s, { compression: { algorithm: 'gzip' }, encryption: { key } }),
    ],
  ])('%s compresses, then encrypts', async (_name, build) => {
    const inner = createTrustingStore()
    const store = build(inner)
    const result = await store.put(KEY, bytes)
    expect(result.integrity).toBe(sha256Integrity(bytes))
    expect(result.size).toBe(bytes.length)
    // Compressed first: the stored bytes are small, and they are ciphertext (the encryption header).
    expect(result.storedSize).toBeLessThan(bytes.length / 3)
    const stored = inner.bytes.get(KEY) as Buffer
    expect(stored.length).toBe(result.storedSize)
    expect(stored.subarray(0, 4).toString('latin1')).toBe('PBE\x01')
    expect((await readAll(await store.open(KEY, result.integrity))).equals(bytes)).toBe(true)
  })
})

describe('key sources', () => {
  let dir: string
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'pb-keys-'))
  })
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  it('keyFromEnv reads base64 of 32 bytes from PATCH_BACKUP_KEY', () => {
    const key = generateKey()
    expect(keyFromEnv({ PATCH_BACKUP_KEY: Buffer.from(key).toString('base64') })).toEqual(key)
    expect(() => keyFromEnv({})).toThrow(expect.objectContaining({ code: 'INVALID_KEY' }))
    expect(() => keyFromEnv({ PATCH_BACKUP_KEY: 'c2hvcnQ=' })).toThrow(
      expect.objectContaining({ code: 'INVALID_KEY' }),
    )
  })

  it('keyFromFile reads base64, hex or 32 raw bytes', async () => {
    const key = generateKey()
    for (const [name, content] of [
      ['b64', `${Buffer.from(key).toString('base64')}\n`],
      ['hex', Buffer.from(key).toString('hex')],
      ['raw', Buffer.from(key)],
    ] as const) {
      await writeFile(path.join(dir, name), content)
      expect(await keyFromFile(path.join(dir, name))).toEqual(key)
    }
    await expect(keyFromFile(path.join(dir, 'missing'))).rejects.toMatchObject({
      code: 'INVALID_KEY',
    })
  })

  it('keyFromPassphrase derives the same key from the same passphrase and salt, another from another salt', async () => {
    const salt = (await readSaltFile(path.join(dir, 'patch-backup.salt'), { create: true })).salt
    expect(JSON.parse(await readFile(path.join(dir, 'patch-backup.salt'), 'utf8'))).toMatchObject({
      kdf: 'scrypt',
      N: 131072,
      r: 8,
      p: 1,
    })
    const again = (await readSaltFile(path.join(dir, 'patch-backup.salt'))).salt
    expect(again).toEqual(salt)
    const cheap = { N: 1024, r: 8, p: 1 }
    const a = await keyFromPassphrase('correct horse battery', { salt, scrypt: cheap })
    const b = await keyFromPassphrase('correct horse battery', { salt, scrypt: cheap })
    const c = await keyFromPassphrase('correct horse battery', {
      salt: new Uint8Array(16),
      scrypt: cheap,
    })
    expect(a).toHaveLength(32)
    expect(b).toEqual(a)
    expect(c).not.toEqual(a)
    await expect(keyFromPassphrase('short', { salt })).rejects.toMatchObject({
      code: 'INVALID_KEY',
    })
    await expect(readSaltFile(path.join(dir, 'none'))).rejects.toMatchObject({
      code: 'INVALID_KEY',
    })
  })

  it('keyFromPassphrase with the default cost (scrypt N=2^17)', async () => {
    const key = await keyFromPassphrase('correct horse battery', {
      salt: new Uint8Array(16).fill(7),
    })
    expect(key).toHaveLength(32)
  })
})
