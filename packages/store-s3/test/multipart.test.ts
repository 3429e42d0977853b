import { randomBytes, randomUUID } from 'node:crypto'
import { readStream } from '@patch-backup/conformance'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Bucket, openBucket, uploadInParts } from '../src/index.js'
import { type S3TestServer, startS3Server } from './server.js'

const MIB = 1024 * 1024
const PART = 5 * MIB

let server: S3TestServer
let bucket: Bucket
beforeAll(async () => {
  server = await startS3Server()
  bucket = openBucket(server.client(), server.bucket)
})
afterAll(() => server?.stop())

/** The real bucket, counting calls and the parts in flight at once. */
function watched(inner: Bucket, failPart?: number) {
  const calls: string[] = []
  const sizes: number[] = []
  let inFlight = 0
  let maxInFlight = 0
  const bucket: Bucket = {
    ...inner,
    async write(name, body) {
      calls.push('write')
      return inner.write(name, body)
    },
    async startMultipart(name) {
      calls.push('start')
      return inner.startMultipart(name)
    },
    async uploadPart(name, id, partNumber, body) {
      calls.push(`part ${partNumber}`)
      sizes.push(body.byteLength)
      maxInFlight = Math.max(maxInFlight, ++inFlight)
      try {
        await new Promise((resolve) => setTimeout(resolve, 20))
        if (partNumber === failPart) throw new Error(`part ${partNumber} refused`)
        return await inner.uploadPart(name, id, partNumber, body)
      } finally {
        inFlight--
      }
    },
    async completeMultipart(name, id, etags) {
      calls.push('complete')
      return inner.completeMultipart(name, id, etags)
    },
    async abortMultipart(name, id) {
      calls.push('abort')
      return inner.abortMultipart(name, id)
    },
  }
  return { bucket, calls, sizes, maxInFlight: () => maxInFlight }
}

/** `bytes` cut into chunks of `size` (the last one shorter), as a stream would give them. */
async function* chunked(bytes: Buffer, size: number) {
  for (let at = 0; at < bytes.length; at += size) yield bytes.subarray(at, at + size)
}

async function stored(name: string): Promise<Buffer> {
  const body = await bucket.read(name)
  if (!body) throw new Error(`${name} was not written`)
  return readStream(body)
}

describe('uploadInParts', () => {
  it.each([
    ['empty', 0],
    ['one byte', 1],
    ['exactly one part', PART],
  ])('writes a source that fits in one part (%s) with one PutObject', async (_, size) => {
    const bytes = randomBytes(size)
    const name = `mp/${randomUUID()}`
    const w = watched(bucket)
    await uploadInParts(w.bucket, name, chunked(bytes, 64 * 1024), {
      partSize: PART,
      queueSize: 4,
    })
    expect(w.calls).toEqual(['write'])
    expect((await stored(name)).equals(bytes)).toBe(true)
  })

  it('cuts a larger source into parts of partSize, the last one shorter, in order', async () => {
    const bytes = randomBytes(3 * PART + 12_345)
    const name = `mp/${randomUUID()}`
    const w = watched(bucket)
    // Chunks that straddle part boundaries.
    await uploadInParts(w.bucket, name, chunked(bytes, 3 * MIB + 7), {
      partSize: PART,
      queueSize: 2,
    })
    expect(w.calls[0]).toBe('start')
    expect(w.calls.at(-1)).toBe('complete')
    expect(w.sizes).toEqual([PART, PART, PART, 12_345])
    expect((await stored(name)).equals(bytes)).toBe(true)
  })

  it('sends no empty last part when the source is an exact multiple of partSize', async () => {
    const bytes = randomBytes(2 * PART)
    const name = `mp/${randomUUID()}`
    const w = watched(bucket)
    await uploadInParts(w.bucket, name, [bytes], { partSize: PART, queueSize: 4 })
    expect(w.sizes).toEqual([PART, PART])
    expect((await stored(name)).equals(bytes)).toBe(true)
  })

  it('keeps at most queueSize parts in flight', async () => {
    const bytes = randomBytes(8 * PART)
    const name = `mp/${randomUUID()}`
    const w = watched(bucket)
    await uploadInParts(w.bucket, name, chunked(bytes, 256 * 1024), {
      partSize: PART,
      queueSize: 3,
    })
    expect(w.sizes).toHaveLength(8)
    expect(w.maxInFlight()).toBe(3)
    expect((await stored(name)).equals(bytes)).toBe(true)
  })

  it('aborts the upload and rejects with the first error when a part fails', async () => {
    const name = `mp/${randomUUID()}`
    const w = watched(bucket, 2)
    const failure = await uploadInParts(w.bucket, name, chunked(randomBytes(6 * PART), MIB), {
      partSize: PART,
      queueSize: 2,
    }).catch((error: unknown) => error)
    expect(String(failure)).toContain('part 2 refused')
    expect(w.calls).toContain('abort')
    expect(w.calls).not.toContain('complete')
    expect(await bucket.size(name)).toBeUndefined()
  })

  it('aborts the upload and rejects with the source error when the source fails', async () => {
    const name = `mp/${randomUUID()}`
    const w = watched(bucket)
    async function* failing() {
      yield* chunked(randomBytes(2 * PART + 1), MIB)
      throw new Error('disk read failed')
    }
    const failure = await uploadInParts(w.bucket, name, failing(), {
      partSize: PART,
      queueSize: 4,
    }).catch((error: unknown) => error)
    expect(String(failure)).toContain('disk read failed')
    expect(w.calls).toContain('abort')
    expect(w.calls).not.toContain('complete')
    expect(await bucket.size(name)).toBeUndefined()
  })

  it.each([
    { partSize: PART, queueSize: 0 },
    { partSize: 0, queueSize: 4 },
  ])('refuses tuning that could never finish (%o) with INVALID_OPTIONS', async (tuning) => {
    await expect(
      uploadInParts(bucket, `mp/${randomUUID()}`, [randomBytes(10)], tuning),
    ).rejects.toMatchObject({
      code: 'INVALID_OPTIONS',
    })
  })
})
