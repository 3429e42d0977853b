// Store layers: what compression and encryption share to stack on a store and see each other.
// Layers see store keys and bytes only: they never see paths, manifests or the environment.

import { pipeline, Readable } from 'node:stream'
import { PatchBackupError } from '../errors.js'
import { HashingStream, parseIntegrity, VerifyingStream } from '../integrity.js'
import type { BackupStore, PutResult } from '../types.js'

/** Marks a store built by `withCompression` / `withEncryption`, so layers can see each other. */
export const STORE_LAYER: unique symbol = Symbol.for('@patch-backup/core.store-layer')

export type LayerKind = 'compression' | 'encryption'

/** What one decorator tells the layers around it. */
export interface StoreLayer {
  readonly kind: LayerKind
  readonly inner: BackupStore
  readonly options: unknown
  /**
   * The bytes `key` holds, as this layer's `put` received them: decoded by this layer and every
   * layer below, checked as far as those layers can (AEAD tags, gzip CRC). `undefined` when gone.
   */
  decode(key: string): Promise<Readable | undefined>
  /**
   * The bytes of `integrity` stored as they are, by a store that had no decorator yet, when the key
   * holds nothing; `undefined` when absent or when this layer refuses undecoded bytes (encryption
   * does, unless told otherwise).
   */
  probe(key: string, integrity: string): Promise<Readable | undefined>
}

export type LayeredStore = BackupStore & { readonly [STORE_LAYER]: StoreLayer }

export function layerOf(store: BackupStore): StoreLayer | undefined {
  return (store as Partial<LayeredStore>)[STORE_LAYER]
}

/** A decorator can only find the bytes of a key if the store below can open by key. */
export function assertWrappable(inner: BackupStore, decorator: string): void {
  if (!inner || typeof inner.put !== 'function') {
    throw new PatchBackupError('INVALID_OPTIONS', `${decorator} needs a BackupStore to wrap.`)
  }
  if (!layerOf(inner) && typeof inner.openKey !== 'function') {
    throw new PatchBackupError(
      'INVALID_OPTIONS',
      `${decorator} needs a store with openKey(key) (the memory and cacache stores have it): the bytes it keeps are not the original bytes, so it must find them by key.`,
    )
  }
}

export function openCurrent(inner: BackupStore, key: string): Promise<Readable | undefined> {
  const layer = layerOf(inner)
  if (layer) return layer.decode(key)
  return (inner.openKey as (key: string) => Promise<Readable | undefined>).call(inner, key)
}

export function probeOriginal(
  inner: BackupStore,
  key: string,
  integrity: string,
): Promise<Readable | undefined> {
  const layer = layerOf(inner)
  return layer ? layer.probe(key, integrity) : inner.open(key, integrity)
}

export function toReadable(data: Readable | Uint8Array): Readable {
  return data instanceof Uint8Array ? Readable.from([Buffer.from(data)]) : data
}

export type Encoder = (plain: AsyncIterable<Buffer>) => AsyncIterable<Buffer>
/** `key` is for messages only. */
export type Decoder = (stored: AsyncIterable<Buffer>, key: string) => AsyncIterable<Buffer>

/**
 * Hashes the original bytes on their way into `encode`, streams the encoded bytes into the inner
 * store, and answers with the original's integrity and size plus what was stored.
 */
export async function putEncoded(
  inner: BackupStore,
  key: string,
  data: Readable | Uint8Array,
  encode: Encoder,
): Promise<PutResult> {
  const source = toReadable(data)
  const hashing = new HashingStream()
  // A source error reaches the inner store through `hashing`, so its put rejects with it.
  pipeline(source, hashing, () => {})
  let stored: PutResult
  try {
    stored = await inner.put(key, Readable.from(encode(hashing), { objectMode: false }))
  } catch (error) {
    hashing.destroy()
    source.destroy()
    throw error
  }
  if (hashing.integrity === undefined) {
    throw new PatchBackupError(
      'STORE_ERROR',
      `The store finished writing ${key} before reading all of its bytes; nothing usable was stored.`,
    )
  }
  return {
    integrity: hashing.integrity,
    size: hashing.size,
    storedSize: stored.storedSize ?? stored.size,
  }
}

/** `stream`, failing with INTEGRITY_MISMATCH unless its bytes hash to `integrity`. */
function verified(stream: Readable, integrity: string): Readable {
  const verifying = new VerifyingStream(integrity)
  pipeline(stream, verifying, () => {})
  return verifying
}

export interface LayerSpec {
  kind: LayerKind
  inner: BackupStore
  options: unknown
  encode: Encoder | undefined
  decode: Decoder
  /** Whether bytes stored before this layer existed (found under the original integrity) may be read. */
  readsUndecoded: boolean
}

/** The `BackupStore` a decorator returns: `put` encodes, `open` decodes and checks the original's integrity. */
export function createLayeredStore(spec: LayerSpec): LayeredStore {
  const { inner, encode, decode } = spec

  const layer: StoreLayer = {
    kind: spec.kind,
    inner,
    options: spec.options,
    async decode(key) {
      const stored = await openCurrent(inner, key)
      return stored && Readable.from(decode(stored, key), { objectMode: false })
    },
    async probe(key, integrity) {
      if (!spec.readsUndecoded) return undefined
      const stream = await probeOriginal(inner, key, integrity)
      return stream && !inner.verifiesReads ? verified(stream, integrity) : stream
    },
  }

  const store: LayeredStore = {
    [STORE_LAYER]: layer,
    put: encode
      ? (key, data) => putEncoded(inner, key, data, encode)
      : (key, data) => inner.put(key, data),
    async open(key, integrity) {
      parseIntegrity(integrity) // an unsupported integrity fails here, as it does on a plain store
      // A layer that writes bytes as they are (compression 'none', the CLI's default) finds nearly
      // everything stored as is: reading by digest first skips the key lookup and a second hash.
      // Only over a store that verifies its reads: one that opens by key would hand the encoded bytes.
      const asIs = !encode && inner.verifiesReads && (await layer.probe(key, integrity))
      if (asIs) return asIs
      const decoded = await layer.decode(key)
      // Nothing under the key: the bytes may still be stored as they are, under their own integrity
      // (a store that had no decorator yet reads by digest). Asked only on a miss: it costs a lookup.
      if (!decoded) return encode ? layer.probe(key, integrity) : undefined
      return verified(decoded, integrity)
    },
    verifiesReads: true,
    openKey: (key) => layer.decode(key),
    has: (key) => inner.has(key),
    remove: (key, opts) => inner.remove(key, opts),
  }
  // Bytes written as they are (compression 'none', the CLI's default) can be read as they are.
  if (!encode && inner.verifiesReads && inner.readWhole) {
    const readWhole = inner.readWhole.bind(inner)
    store.readWhole = (key, integrity, maxBytes) => {
      parseIntegrity(integrity)
      return readWhole(key, integrity, maxBytes)
    }
  }
  if (inner.keys) {
    const keys = inner.keys.bind(inner)
    store.keys = (prefix) => keys(prefix)
  }
  if (inner.collectGarbage) {
    // `stillNeeded` passes through as is: it can only speak for bytes stored undecoded.
    const collect = inner.collectGarbage.bind(inner)
    store.collectGarbage = (opts) => collect(opts)
  }
  if (inner.removeDeadScratch) store.removeDeadScratch = inner.removeDeadScratch.bind(inner)
  return store
}

/** A FIFO of byte chunks that hands out exact-length pieces without copying more than it must. */
export class ByteQueue {
  private readonly chunks: Buffer[] = []
  length = 0

  push(chunk: Buffer | Uint8Array | string): void {
    const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk)
    if (buffer.length === 0) return
    this.chunks.push(buffer)
    this.length += buffer.length
  }

  /** The first `n` bytes (`n` at most `length`). */
  take(n: number): Buffer {
    if (n <= 0) return Buffer.alloc(0)
    const first = this.chunks[0] as Buffer
    if (first.length >= n) {
      if (first.length === n) this.chunks.shift()
      else this.chunks[0] = first.subarray(n)
      this.length -= n
      return first.subarray(0, n)
    }
    const out = Buffer.allocUnsafe(n)
    let offset = 0
    while (offset < n) {
      const chunk = this.chunks[0] as Buffer
      const count = Math.min(chunk.length, n - offset)
      chunk.copy(out, offset, 0, count)
      offset += count
      if (count === chunk.length) this.chunks.shift()
      else this.chunks[0] = chunk.subarray(count)
    }
    this.length -= n
    return out
  }

  takeAll(): Buffer {
    return this.take(this.length)
  }
}

/** `first`, then the rest of `input`; closes `input` however the reader stops. */
export async function* chain(
  first: Buffer,
  input: AsyncIterator<Buffer>,
  fromInput?: WeakSet<object>,
): AsyncGenerator<Buffer> {
  try {
    if (first.length > 0) yield first
    for (;;) {
      let next: IteratorResult<Buffer>
      try {
        next = await input.next()
      } catch (error) {
        if (typeof error === 'object' && error !== null) fromInput?.add(error)
        throw error
      }
      if (next.done) return
      yield next.value
    }
  } finally {
    await input.return?.()
  }
}

/** At least `size` bytes from the start of `input` (fewer if it ends first), and whether it ended. */
export async function readHead(
  input: AsyncIterator<Buffer>,
  size: number,
): Promise<[Buffer, boolean]> {
  const head = new ByteQueue()
  while (head.length < size) {
    const next = await input.next()
    if (next.done) return [head.takeAll(), true]
    head.push(next.value)
  }
  return [head.takeAll(), false]
}
