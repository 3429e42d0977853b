import { pipeline, Readable, type Transform } from 'node:stream'
import { promisify } from 'node:util'
import { PatchBackupError } from '../errors.js'
import type { BackupStore } from '../types.js'
import {
  assertWrappable,
  chain,
  createLayeredStore,
  type Decoder,
  type Encoder,
  type LayeredStore,
  readHead,
} from './layer.js'

type Zlib = typeof import('node:zlib')
let loadedZlib: Zlib | undefined
/** node:zlib, at the first (de)compression: a run with no compression configured never loads it. */
function zlib(): Zlib {
  loadedZlib ??= process.getBuiltinModule('node:zlib')
  return loadedZlib
}

export type CompressionAlgorithm = 'gzip' | 'brotli' | 'zstd' | 'none'

export interface CompressionOptions {
  /**
   * `brotli` (default) and `gzip` run everywhere; `zstd` needs a Node with `zlib.createZstdCompress`
   * (22.15+ / 23.8+). `none` writes bytes as they are but still reads compressed ones, for a store
   * where compression was on once. Brotli 5 is the default: on node_modules code it stores 7-25%
   * less than gzip 6, compresses about as fast, and restores faster (bench-policies.mjs).
   */
  algorithm?: CompressionAlgorithm
  /** gzip 1-9 (default 6), brotli 0-11 (default 5), zstd 1-22 (default 3). */
  level?: number
}

/**
 * Stored format: an 8-byte header `PBZ` 0x01 <method> 0 0 0, then the body. Method 0 is raw (the
 * data did not compress), 1 gzip, 2 brotli, 3 zstd. Bytes without the header are read as they are:
 * they were written before compression was turned on.
 */
const MAGIC = Buffer.from('PBZ\x01', 'latin1')
const HEADER_SIZE = 8
const METHOD = { raw: 0, gzip: 1, brotli: 2, zstd: 3 } as const
type Method = (typeof METHOD)[keyof typeof METHOD]

/** Data longer than this is probed on its first bytes; shorter data is compressed in one go. */
const SAMPLE_SIZE = 64 * 1024
/** Compress only when the probe saves at least 10%. */
const WORTH_IT = 0.9

const DEFAULT_LEVEL = { gzip: 6, brotli: 5, zstd: 3 } as const
const LEVELS = { gzip: [1, 9], brotli: [0, 11], zstd: [1, 22] } as const

interface ZstdZlib {
  createZstdCompress(options?: object): Transform
  createZstdDecompress(options?: object): Transform
  zstdCompress(
    buffer: Buffer,
    options: object,
    callback: (e: Error | null, r: Buffer) => void,
  ): void
}

const zstd = (): ZstdZlib | undefined =>
  typeof (zlib() as unknown as Partial<ZstdZlib>).createZstdCompress === 'function'
    ? (zlib() as unknown as ZstdZlib)
    : undefined

function zstdUnsupported(action: string): PatchBackupError {
  return new PatchBackupError(
    'UNSUPPORTED',
    `Cannot ${action} zstd on Node ${process.versions.node}: zlib's zstd arrived in Node 22.15 and 23.8. Use 'gzip' or 'brotli', or run a newer Node.`,
  )
}

const zstdLevelKey = () =>
  (zlib().constants as unknown as Record<string, number>).ZSTD_c_compressionLevel ?? 100

function compressorOptions(method: Method, level: number): object {
  if (method === METHOD.gzip) return { level }
  if (method === METHOD.brotli) {
    // A 1 MiB window (default 4 MiB): ~20 MiB less memory per stream, and node_modules files are
    // nearly all smaller than it. Fixed, so the same input still gives the same bytes.
    return {
      params: {
        [zlib().constants.BROTLI_PARAM_QUALITY]: level,
        [zlib().constants.BROTLI_PARAM_LGWIN]: 20,
      },
    }
  }
  return { params: { [zstdLevelKey()]: level } }
}

function createCompressor(method: Method, level: number): Transform {
  const options = compressorOptions(method, level)
  if (method === METHOD.gzip) return zlib().createGzip(options)
  if (method === METHOD.brotli) return zlib().createBrotliCompress(options)
  const z = zstd()
  if (!z) throw zstdUnsupported('compress with')
  return z.createZstdCompress(options)
}

function createDecompressor(method: Method): Transform {
  if (method === METHOD.gzip) return zlib().createGunzip()
  if (method === METHOD.brotli) return zlib().createBrotliDecompress()
  const z = zstd()
  if (!z) throw zstdUnsupported('read a backup compressed with')
  return z.createZstdDecompress()
}

const gzipOnce = (data: Buffer, options: object) => promisify(zlib().gzip)(data, options)
const brotliOnce = (data: Buffer, options: object) =>
  promisify(zlib().brotliCompress)(data, options)
const deflateRawOnce = (data: Buffer, options: { level: number }) =>
  promisify(zlib().deflateRaw)(data, options)

function compressOnce(method: Method, level: number, data: Buffer): Promise<Buffer> {
  const options = compressorOptions(method, level)
  if (method === METHOD.gzip) return gzipOnce(data, options)
  if (method === METHOD.brotli) return brotliOnce(data, options)
  const z = zstd() as ZstdZlib
  return promisify(z.zstdCompress.bind(z))(data, options)
}

function header(method: Method): Buffer {
  const bytes = Buffer.alloc(HEADER_SIZE)
  MAGIC.copy(bytes)
  bytes[4] = method
  return bytes
}

/** The method of a stored blob, or `undefined` when it has no header (written before compression). */
function methodOf(head: Buffer): Method | undefined {
  if (head.length < HEADER_SIZE || !head.subarray(0, 4).equals(MAGIC)) return undefined
  const method = head[4] as number
  if (method > METHOD.zstd || head[5] !== 0 || head[6] !== 0 || head[7] !== 0) {
    throw new PatchBackupError(
      'UNSUPPORTED',
      `A backup was compressed in a format this version of @patch-backup/core does not know (method ${method}). Upgrade @patch-backup/core to read it.`,
    )
  }
  return method as Method
}

function encoder(method: Exclude<Method, 0>, level: number): Encoder {
  return async function* encode(plain) {
    const input = plain[Symbol.asyncIterator]()
    const [sample, ended] = await readHead(input, SAMPLE_SIZE)
    if (ended) {
      // Everything is here: compress it in one go and keep whichever is smaller.
      const packed = sample.length > 0 ? await compressOnce(method, level, sample) : undefined
      if (packed && packed.length < sample.length) yield* [header(method), packed]
      else yield* [header(METHOD.raw), sample]
      return
    }
    // The same first bytes give the same decision, so identical files still store identically.
    const probe = await deflateRawOnce(sample, { level: 1 })
    if (probe.length > sample.length * WORTH_IT) {
      yield header(METHOD.raw)
      yield* chain(sample, input)
      return
    }
    yield header(method)
    const compressor = createCompressor(method, level)
    pipeline(Readable.from(chain(sample, input)), compressor, () => {})
    yield* compressor
  }
}

function damaged(error: unknown): PatchBackupError {
  const detail = error instanceof Error ? error.message : String(error)
  return new PatchBackupError(
    'INTEGRITY_MISMATCH',
    `The compressed bytes of a backup are damaged (${detail}). Nothing was written; run 'patch-backup verify' to find every damaged file.`,
    { cause: error },
  )
}

const decode: Decoder = async function* decode(stored) {
  const input = stored[Symbol.asyncIterator]()
  const [head] = await readHead(input, HEADER_SIZE)
  const method = methodOf(head)
  if (method === undefined || method === METHOD.raw) {
    yield* chain(method === undefined ? head : head.subarray(HEADER_SIZE), input)
    return
  }
  const fromInput = new WeakSet<object>()
  const decompressor = createDecompressor(method)
  pipeline(
    Readable.from(chain(head.subarray(HEADER_SIZE), input, fromInput)),
    decompressor,
    () => {},
  )
  try {
    yield* decompressor
  } catch (error) {
    // The store's own errors (INTEGRITY_MISMATCH, STORE_ERROR) pass as they are; zlib's mean damage.
    if (error instanceof PatchBackupError || fromInput.has(error as object)) throw error
    throw damaged(error)
  }
}

function checkedOptions(options: CompressionOptions): {
  algorithm: CompressionAlgorithm
  level: number
} {
  const algorithm = options.algorithm ?? 'brotli'
  if (algorithm === 'none') return { algorithm, level: 0 }
  if (!(algorithm in DEFAULT_LEVEL)) {
    throw new PatchBackupError(
      'INVALID_OPTIONS',
      `Unknown compression algorithm ${JSON.stringify(algorithm)}: use 'gzip', 'brotli', 'zstd' or 'none'.`,
    )
  }
  if (algorithm === 'zstd' && !zstd()) throw zstdUnsupported('compress with')
  const level = options.level ?? DEFAULT_LEVEL[algorithm]
  const [min, max] = LEVELS[algorithm]
  if (!Number.isInteger(level) || level < min || level > max) {
    throw new PatchBackupError(
      'INVALID_OPTIONS',
      `Compression level ${String(level)} is out of range for ${algorithm}: use an integer from ${min} to ${max}.`,
    )
  }
  return { algorithm, level }
}

/** Whether this Node can compress with `algorithm` (zstd needs Node 22.15+ / 23.8+). */
export function isCompressionSupported(algorithm: CompressionAlgorithm): boolean {
  return algorithm !== 'zstd' || zstd() !== undefined
}

/**
 * A store that compresses what it is given before the wrapped store keeps it. `put` still answers
 * with the integrity and size of the original bytes (plus `storedSize`), and `open` decompresses and
 * checks them against that integrity while streaming. Data that does not compress (judged on its
 * first 64 KiB) is kept raw behind the same 8-byte header. The output depends only on the input,
 * algorithm and level, so identical files still share their stored bytes. Bytes the wrapped store
 * held before compression was turned on stay readable.
 */
export function withCompression(
  store: BackupStore,
  options: CompressionOptions = {},
): LayeredStore {
  assertWrappable(store, 'withCompression')
  const checked = checkedOptions(options ?? {})
  return createLayeredStore({
    kind: 'compression',
    inner: store,
    options: checked,
    encode:
      checked.algorithm === 'none'
        ? undefined
        : encoder(METHOD[checked.algorithm as 'gzip' | 'brotli' | 'zstd'], checked.level),
    decode,
    readsUndecoded: true,
  })
}
