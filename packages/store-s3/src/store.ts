import type { Readable } from 'node:stream'
import type { S3Client } from '@aws-sdk/client-s3'
import {
  asStoreError,
  type BackupStore,
  KeyedQueue,
  PatchBackupError,
  type PutResult,
  VerifyingStream,
} from '@patch-backup/core'
import { type Bucket, openBucket } from './bucket.js'
import { contentExists, freeContentIfUnreferenced, openContent, placeContent } from './content.js'
import type { UploadTuning } from './multipart.js'
import {
  type ContentAddress,
  contentAddressOf,
  type ObjectNames,
  objectNames,
} from './object-names.js'
import { MAX_OBJECT_BYTES, stage } from './staging.js'

/** S3 refuses parts under 5 MiB (except the last one). */
const MIN_PART_SIZE = 5 * 1024 * 1024

export interface S3StoreOptions {
  /** A configured client (region, credentials, endpoint). See `createS3StoreFromEnv` to build one. */
  client: S3Client
  bucket: string
  /** Folder inside the bucket that holds the store, e.g. `team/patch-backups`. Default: the bucket's root. */
  prefix?: string
  /**
   * Sources up to this many bytes are hashed in memory and written straight to their content address
   * (one PutObject); larger ones go up to a temp object first. Default: `partSize`.
   */
  inlineLimit?: number
  /** Multipart part size, at least 5 MiB (S3's minimum). Default 5 MiB. */
  partSize?: number
  /** Parts uploaded at once. Default 4. A large upload holds `partSize * (queueSize + 1)` bytes of part buffers. */
  queueSize?: number
  /**
   * `keys()` leaves out keys whose key object is younger than this (by the server's clock, as the
   * listing reports it, against this machine's). The service's gc finds orphan keys through
   * `keys()`: on a bucket several machines write, a key another machine has just stored and not
   * yet recorded in its manifest looks like an orphan. Default 0 (every key); `openS3Repository`
   * sets an hour.
   */
  orphanGraceMs?: number
}

export interface S3Store extends BackupStore {
  readonly client: S3Client
  readonly bucket: string
  /** The normalized prefix (no leading or trailing `/`); `''` for the bucket's root. */
  readonly prefix: string
  /** Object names of this store's layout (for tests, `verify` and `gc`). */
  readonly names: ObjectNames
  /** Opens the bytes `key` points at now, verified against the key's own integrity; `undefined` when gone. */
  openKey(key: string): Promise<Readable | undefined>
  remove(key: string, opts?: RemoveOptions): Promise<boolean>
  keys(prefix: string): AsyncIterable<string>
}

/** `remove`'s options; `stillNeeded` (asked before bytes are freed) lets the service keep bytes its manifests record. */
export interface RemoveOptions {
  freeContent?: boolean
  stillNeeded?: (integrity: string) => boolean | Promise<boolean>
}

/** What a key object holds. */
interface KeyRecord {
  integrity: string
  size: number
}

function invalid(message: string): PatchBackupError {
  return new PatchBackupError('INVALID_OPTIONS', message)
}

function sizeOption(value: number | undefined, fallback: number, name: string, min: number) {
  if (value === undefined) return fallback
  if (!Number.isSafeInteger(value) || value < min) {
    throw invalid(`createS3Store: ${name} must be a whole number of bytes, at least ${min}.`)
  }
  return value
}

/** The address of `integrity`, or `undefined` when no bytes can have it (a malformed digest). */
function addressOrUndefined(integrity: string): ContentAddress | undefined {
  try {
    return contentAddressOf(integrity)
  } catch {
    return undefined
  }
}

/**
 * What the key object of `key` says: `undefined` when there is none, `{}` when it holds no readable
 * integrity (a damaged or foreign object, which `has` treats as absent and `remove` still deletes).
 */
async function readRecord(
  bucket: Bucket,
  names: ObjectNames,
  key: string,
): Promise<Partial<KeyRecord> | undefined> {
  const text = await bucket.readText(names.key(key))
  if (text === undefined) return undefined
  try {
    const record = JSON.parse(text) as Partial<KeyRecord> | null
    return typeof record?.integrity === 'string' ? record : {}
  } catch {
    return {}
  }
}

/** A stream of `body` that fails with INTEGRITY_MISMATCH unless the bytes hash to `integrity`. */
function readVerified(body: Readable, verifying: VerifyingStream, key: string): Readable {
  body.on('error', (error) => verifying.destroy(asStoreError(error, `read the bytes of ${key}`)))
  verifying.on('close', () => body.destroy())
  body.pipe(verifying)
  return verifying
}

/**
 * A `BackupStore` on an S3 bucket (AWS S3 or any S3-compatible server). Content is addressed by
 * sha256, so identical bytes are stored once; keys are opaque strings. Layout and the remove
 * protocol: see the README and `content.ts`.
 */
export function createS3Store(options: S3StoreOptions): S3Store {
  if (typeof options?.client?.send !== 'function') {
    throw invalid('createS3Store needs { client }: an S3Client from @aws-sdk/client-s3.')
  }
  if (typeof options.bucket !== 'string' || options.bucket.length === 0) {
    throw invalid('createS3Store needs { bucket }: the name of the bucket to use.')
  }
  if (options.prefix !== undefined && typeof options.prefix !== 'string') {
    throw invalid('createS3Store: prefix must be a string.')
  }
  const tuning: UploadTuning = {
    partSize: sizeOption(options.partSize, MIN_PART_SIZE, 'partSize', MIN_PART_SIZE),
    queueSize: sizeOption(options.queueSize, 4, 'queueSize', 1),
  }
  const inlineLimit = Math.min(
    sizeOption(options.inlineLimit, tuning.partSize, 'inlineLimit', 0),
    MAX_OBJECT_BYTES,
  )
  const orphanGraceMs = options.orphanGraceMs ?? 0
  if (!Number.isFinite(orphanGraceMs) || orphanGraceMs < 0) {
    throw invalid('createS3Store: orphanGraceMs must be 0 or more milliseconds.')
  }
  const bucket = openBucket(options.client, options.bucket)
  const names = objectNames(options.prefix)
  // One operation per key at a time in this process (so two removes of one key do not both say true).
  const perKey = new KeyedQueue()

  async function put(key: string, data: Readable | Uint8Array): Promise<PutResult> {
    let tmp: string | undefined
    // What the key held before, read while the bytes go up: a key that moves to other bytes drops
    // its marker of the old ones, which would otherwise count as a reference to them for good.
    const previous = readRecord(bucket, names, key).catch(() => undefined)
    try {
      const staged = await stage(bucket, names, data, inlineLimit, tuning)
      if ('tmp' in staged) tmp = staged.tmp
      const record: KeyRecord = { integrity: staged.integrity, size: staged.size }
      const writes = await Promise.allSettled([
        // Marker first, content after it: the order the remove protocol relies on (content.ts).
        bucket
          .write(names.ref(staged.address, key), '')
          .then(() => placeContent(bucket, names, staged, tuning)),
        // Meanwhile the key object (once its old record is read). Until put resolves nobody relies
        // on it; if put fails, it may stay behind pointing at missing bytes, which `has` and
        // `open` report as absent.
        previous.then(() => bucket.write(names.key(key), JSON.stringify(record))),
      ])
      for (const write of writes) if (write.status === 'rejected') throw write.reason
      const before = (await previous)?.integrity
      const old = before === undefined ? undefined : addressOrUndefined(before)
      const stale = old && names.ref(old, key)
      if (stale && stale !== names.ref(staged.address, key)) {
        // Only after the key object moved on; if this delete fails, the marker just keeps bytes.
        await bucket.delete(stale).catch(() => {})
      }
      return record
    } catch (error) {
      throw asStoreError(error, `store ${key}`)
    } finally {
      if (tmp) await bucket.delete(tmp).catch(() => {})
    }
  }

  async function open(key: string, integrity: string): Promise<Readable | undefined> {
    // Unsupported or malformed integrity strings fail here with INTEGRITY_MISMATCH.
    const verifying = new VerifyingStream(integrity)
    const address = addressOrUndefined(integrity)
    if (!address) return undefined
    let body: Readable | undefined
    try {
      body = await openContent(bucket, names, address)
    } catch (error) {
      throw asStoreError(error, `open the bytes of ${key}`)
    }
    return body && readVerified(body, verifying, key)
  }

  async function has(key: string): Promise<boolean> {
    try {
      const integrity = (await readRecord(bucket, names, key))?.integrity
      const address = integrity === undefined ? undefined : addressOrUndefined(integrity)
      return address !== undefined && (await contentExists(bucket, names, address))
    } catch (error) {
      throw asStoreError(error, `look up ${key}`)
    }
  }

  async function openKey(key: string): Promise<Readable | undefined> {
    let integrity: string | undefined
    try {
      integrity = (await readRecord(bucket, names, key))?.integrity
    } catch (error) {
      throw asStoreError(error, `look up ${key}`)
    }
    return integrity === undefined ? undefined : open(key, integrity)
  }

  async function remove(key: string, opts: RemoveOptions = {}): Promise<boolean> {
    try {
      const record = await readRecord(bucket, names, key)
      if (record === undefined) return false
      await bucket.delete(names.key(key))
      const { integrity } = record
      const address = integrity === undefined ? undefined : addressOrUndefined(integrity)
      if (integrity !== undefined && address) {
        await bucket.delete(names.ref(address, key))
        if (opts.freeContent && !(await opts.stillNeeded?.(integrity))) {
          await freeContentIfUnreferenced(bucket, names, address)
        }
      }
      return true
    } catch (error) {
      throw asStoreError(error, `remove ${key}`)
    }
  }

  async function* keys(prefix: string): AsyncGenerator<string> {
    try {
      const newest = Date.now() - orphanGraceMs
      for await (const { name, lastModified } of bucket.listDetailed(names.keysPrefix(prefix))) {
        // A listing that gives no time says nothing about age: keep such a key out of gc's reach.
        if (orphanGraceMs > 0 && (lastModified?.getTime() ?? Number.POSITIVE_INFINITY) > newest) {
          continue
        }
        yield names.keyOf(name)
      }
    } catch (error) {
      throw asStoreError(error, 'list keys')
    }
  }

  return {
    verifiesReads: true,
    client: options.client,
    bucket: options.bucket,
    prefix: names.prefix,
    names,
    put: (key, data) => perKey.run(key, () => put(key, data)),
    open,
    openKey,
    has,
    remove: (key, opts) => perKey.run(key, () => remove(key, opts)),
    keys,
  }
}
