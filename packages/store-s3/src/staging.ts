import { createHash } from 'node:crypto'
import type { Readable } from 'node:stream'
import { PatchBackupError } from '@patch-backup/core'
import type { Bucket } from './bucket.js'
import { type UploadTuning, uploadInParts } from './multipart.js'
import type { ContentAddress, ObjectNames } from './object-names.js'

/** S3's limit for one CopyObject; moving a larger temp object would need UploadPartCopy. */
export const MAX_OBJECT_BYTES = 5 * 1024 ** 3

/** Bytes hashed and ready to be placed at their content address. */
export type Staged = {
  integrity: string
  size: number
  address: ContentAddress
} & (
  | { /** Small enough to hold: written straight to the content address. */ bytes: Uint8Array }
  | { /** Too large to hold: already uploaded here, copied to the content address. */ tmp: string }
)

function toBuffer(chunk: unknown): Buffer {
  if (Buffer.isBuffer(chunk)) return chunk
  if (chunk instanceof Uint8Array) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length)
  return Buffer.from(String(chunk))
}

function tooLarge(): PatchBackupError {
  return new PatchBackupError(
    'STORE_ERROR',
    `The S3 store takes files up to ${MAX_OBJECT_BYTES} bytes (5 GiB, the most one CopyObject moves); this one is larger.`,
  )
}

function stagedBytes(bytes: Uint8Array): Staged {
  const digest = createHash('sha256').update(bytes).digest()
  return {
    integrity: `sha256-${digest.toString('base64')}`,
    size: bytes.byteLength,
    address: { algorithm: 'sha256', hex: digest.toString('hex') },
    bytes,
  }
}

/**
 * Reads `data` and hashes it (sha256). A source that ends within `inlineLimit` bytes is kept in
 * memory and nothing is written yet; a longer one is streamed to a fresh temp object (multipart,
 * `tuning.partSize` at a time) while it is hashed, since its content address is only known at the
 * end. Memory stays near `inlineLimit + partSize * (queueSize + 1)` whatever the size of the source.
 * A failing source rejects with its own error and leaves no temp object behind.
 */
export async function stage(
  bucket: Bucket,
  names: ObjectNames,
  data: Readable | Uint8Array,
  inlineLimit: number,
  tuning: UploadTuning,
): Promise<Staged> {
  if (data instanceof Uint8Array) {
    if (data.byteLength > MAX_OBJECT_BYTES) throw tooLarge()
    return stagedBytes(data)
  }
  const source = data[Symbol.asyncIterator]() as AsyncIterator<unknown>
  let drained = false
  const next = async (): Promise<Buffer | undefined> => {
    const step = await source.next()
    if (step.done) {
      drained = true
      return undefined
    }
    return toBuffer(step.value)
  }
  try {
    const head: Buffer[] = []
    let held = 0
    while (held <= inlineLimit) {
      const chunk = await next()
      if (!chunk) return stagedBytes(Buffer.concat(head, held))
      head.push(chunk)
      held += chunk.length
    }

    const hash = createHash('sha256')
    let size = 0
    const pass = (chunk: Buffer) => {
      size += chunk.length
      if (size > MAX_OBJECT_BYTES) throw tooLarge()
      hash.update(chunk)
      return chunk
    }
    const body = (async function* () {
      while (head.length > 0) yield pass(head.shift() as Buffer)
      for (let chunk = await next(); chunk; chunk = await next()) yield pass(chunk)
    })()
    const tmp = names.tmp()
    try {
      await uploadInParts(bucket, tmp, body, tuning)
      if (!drained) throw new Error('the upload finished before the source stream ended')
    } catch (error) {
      await bucket.delete(tmp).catch(() => {})
      throw error
    }
    const digest = hash.digest()
    return {
      integrity: `sha256-${digest.toString('base64')}`,
      size,
      address: { algorithm: 'sha256', hex: digest.toString('hex') },
      tmp,
    }
  } finally {
    // Stop a source we gave up on (an upload that failed), so it does not stay open.
    if (!drained) await source.return?.().catch(() => {})
  }
}
