import { PatchBackupError } from '@patch-backup/core'
import type { Bucket, UploadedPart } from './bucket.js'

/** How a multipart upload is cut and how many parts go up at once. */
export interface UploadTuning {
  partSize: number
  queueSize: number
}

/**
 * A fixed set of part buffers, handed out and given back. Reusing them is the point: a fresh
 * buffer per part becomes garbage that V8 collects only after tens of MiB of it pile up, which
 * alone pushed a 256 MiB upload through `@aws-sdk/lib-storage` (which concatenates a new buffer
 * for every part) past 150 MiB RSS.
 */
class PartBuffers {
  private readonly free: Buffer[] = []
  private readonly waiting: ((buffer: Buffer) => void)[] = []
  private allocated = 0

  constructor(
    private readonly partSize: number,
    private readonly max: number,
  ) {}

  async take(): Promise<Buffer> {
    const ready = this.free.pop()
    if (ready) return ready
    if (this.allocated < this.max) {
      this.allocated++
      return Buffer.allocUnsafeSlow(this.partSize)
    }
    return new Promise((resolve) => this.waiting.push(resolve))
  }

  give(buffer: Buffer): void {
    const next = this.waiting.shift()
    if (next) next(buffer)
    else this.free.push(buffer)
  }
}

/**
 * Uploads the bytes of `source` to `name`: one PutObject when they fit in one part, else a
 * multipart upload of `partSize` parts, at most `queueSize` in flight, through at most
 * `queueSize + 1` part buffers whatever the size of the source. A failing source or part aborts
 * the multipart upload (best effort: servers without AbortMultipartUpload keep the parts until a
 * lifecycle rule clears them) and rejects with the first error.
 */
export async function uploadInParts(
  bucket: Bucket,
  name: string,
  source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  { partSize, queueSize }: UploadTuning,
): Promise<void> {
  if (
    !Number.isInteger(partSize) ||
    partSize < 1 ||
    !Number.isInteger(queueSize) ||
    queueSize < 1
  ) {
    throw new PatchBackupError(
      'INVALID_OPTIONS',
      `uploadInParts needs a whole partSize and queueSize of at least 1, got ${partSize} and ${queueSize}.`,
    )
  }
  const buffers = new PartBuffers(partSize, queueSize + 1)
  let uploadId: string | undefined
  const parts: UploadedPart[] = []
  const inFlight = new Set<Promise<void>>()
  let failure: { error: unknown } | undefined

  const launch = (id: string, partNumber: number, buffer: Buffer, length: number) => {
    const sent = bucket
      .uploadPart(name, id, partNumber, buffer.subarray(0, length))
      .then((part) => {
        parts[partNumber - 1] = part
      })
      .catch((error) => {
        failure ??= { error }
      })
      .finally(() => {
        buffers.give(buffer)
        inFlight.delete(sent)
      })
    inFlight.add(sent)
  }

  let partNumber = 1
  let current = await buffers.take()
  let filled = 0
  try {
    for await (const chunk of source) {
      let offset = 0
      while (offset < chunk.byteLength) {
        if (failure) throw failure.error
        if (filled === partSize) {
          // More bytes follow a full part, so this is a multipart upload: send it, fill the next.
          // The next buffer is taken first, so that at most queueSize parts are ever in flight.
          uploadId ??= await bucket.startMultipart(name)
          const next = await buffers.take()
          // A part that failed meanwhile may be what freed this buffer: send nothing more.
          // (TypeScript cannot see that the awaits above may have set it.)
          const failed = failure as { error: unknown } | undefined
          if (failed) {
            buffers.give(next)
            throw failed.error
          }
          launch(uploadId, partNumber++, current, filled)
          current = next
          filled = 0
        }
        const copied = Math.min(partSize - filled, chunk.byteLength - offset)
        current.set(chunk.subarray(offset, offset + copied), filled)
        filled += copied
        offset += copied
      }
    }
    if (partNumber === 1) {
      await bucket.write(name, current.subarray(0, filled))
      return
    }
    while (inFlight.size >= queueSize) await Promise.race(inFlight)
    launch(uploadId as string, partNumber, current, filled)
    while (inFlight.size > 0) await Promise.all(inFlight)
    if (failure) throw failure.error
    await bucket.completeMultipart(name, uploadId as string, parts)
  } catch (error) {
    while (inFlight.size > 0) await Promise.all(inFlight)
    if (uploadId !== undefined) await bucket.abortMultipart(name, uploadId).catch(() => {})
    throw error
  }
}
