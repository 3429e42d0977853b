import { Readable } from 'node:stream'
import { sha256Integrity } from '../src/integrity.js'
import type { BackupStore } from '../src/types.js'

export async function readAll(stream: Readable | undefined): Promise<Buffer> {
  if (!stream) throw new Error('expected a stream')
  const chunks: Buffer[] = []
  for await (const chunk of stream) chunks.push(Buffer.from(chunk))
  return Buffer.concat(chunks)
}

export async function failureOf(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => undefined,
    (error: unknown) => error,
  )
}

/**
 * A store that trusts its bytes (no hash check on read) and lets tests edit them: what an
 * attacker who rewrote both the content and its address would present to a decorator.
 */
export function createTrustingStore(readChunk = 7777): BackupStore & {
  bytes: Map<string, Buffer>
  edit(key: string, fn: (bytes: Buffer) => Buffer): void
} {
  const bytes = new Map<string, Buffer>()
  const read = async (data: Readable | Uint8Array) => {
    if (data instanceof Uint8Array) return Buffer.from(data)
    const chunks: Buffer[] = []
    for await (const chunk of data) chunks.push(Buffer.from(chunk))
    return Buffer.concat(chunks)
  }
  return {
    bytes,
    async put(key, data) {
      const stored = await read(data)
      bytes.set(key, stored)
      return { integrity: sha256Integrity(stored), size: stored.length }
    },
    async open(key, integrity) {
      const stored = bytes.get(key)
      return stored && sha256Integrity(stored) === integrity ? Readable.from([stored]) : undefined
    },
    async openKey(key) {
      const stored = bytes.get(key)
      // By default small chunks, so frame boundaries never line up with chunk boundaries.
      return stored && Readable.from(chunked(stored, readChunk))
    },
    async has(key) {
      return bytes.has(key)
    },
    async remove(key) {
      return bytes.delete(key)
    },
    edit(key, fn) {
      const stored = bytes.get(key)
      if (!stored) throw new Error(`no bytes under ${key}`)
      bytes.set(key, fn(Buffer.from(stored)))
    },
  }
}

function* chunked(bytes: Buffer, size: number): Generator<Buffer> {
  for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size)
}

/** Text-like bytes that compress well, deterministic for a seed. */
export function compressible(size: number, seed = 1): Buffer {
  const words = ['module', 'exports', 'function', 'return', 'const', 'require', 'lodash', '\n']
  const out = Buffer.alloc(size)
  let x = seed
  let offset = 0
  while (offset < size) {
    x = (x * 1103515245 + 12345) & 0x7fffffff
    const word = `${words[x % words.length]} `
    offset += out.write(word, offset)
  }
  return out
}
