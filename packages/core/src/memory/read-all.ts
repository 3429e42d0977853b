import type { Readable } from 'node:stream'

/** Collects a stream into one buffer. Only for the in-memory adapters, which hold bytes anyway. */
export async function readAll(data: Readable | Uint8Array): Promise<Buffer> {
  if (data instanceof Uint8Array) return Buffer.from(data)
  const chunks: Buffer[] = []
  for await (const chunk of data) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk))
  return Buffer.concat(chunks)
}
