import { createHash } from 'node:crypto'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { describe, expect, it } from 'vitest'
import {
  HashingStream,
  isPatchBackupError,
  parseIntegrity,
  sha256Integrity,
  VerifyingStream,
} from '../src/index.js'

async function drain(stream: Readable, through: VerifyingStream): Promise<unknown> {
  return pipeline(stream, through, async (source) => {
    for await (const _ of source) {
      // consume
    }
  }).then(
    () => undefined,
    (error: unknown) => error,
  )
}

describe('integrity', () => {
  it('formats sha256 as SRI', () => {
    expect(sha256Integrity('abc')).toBe(
      `sha256-${createHash('sha256').update('abc').digest('base64')}`,
    )
  })

  it('picks the strongest supported hash of a multi-hash SRI string', () => {
    expect(parseIntegrity('sha1-xx sha256-AAAA sha512-BBBB').algorithm).toBe('sha512')
  })

  it('rejects unsupported integrity strings', () => {
    expect(() => parseIntegrity('md5-xyz')).toThrow(/Unsupported integrity/)
  })

  it('passes matching bytes', async () => {
    const bytes = Buffer.from('hello')
    await expect(
      drain(Readable.from([bytes]), new VerifyingStream(sha256Integrity(bytes), 5)),
    ).resolves.toBeUndefined()
  })

  it('fails on other bytes, a short read or a long read', async () => {
    const integrity = sha256Integrity('hello')
    for (const [data, size] of [
      ['hellO', 5],
      ['hell', undefined],
      ['hello!', 5],
      ['hello', 4],
    ] as const) {
      const error = await drain(
        Readable.from([Buffer.from(data)]),
        new VerifyingStream(integrity, size),
      )
      expect(isPatchBackupError(error, 'INTEGRITY_MISMATCH'), `${data}/${size}`).toBe(true)
    }
  })

  it('hashes a stream while passing it on', async () => {
    const hashing = new HashingStream()
    await pipeline(Readable.from([Buffer.from('ab'), Buffer.from('c')]), hashing, async (s) => {
      for await (const _ of s) {
        // consume
      }
    })
    expect(hashing.integrity).toBe(sha256Integrity('abc'))
    expect(hashing.size).toBe(3)
  })
})
