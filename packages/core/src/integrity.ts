import { createHash, type Hash } from 'node:crypto'
import { Transform, type TransformCallback } from 'node:stream'
import { PatchBackupError } from './errors.js'

const SUPPORTED = ['sha512', 'sha384', 'sha256'] as const
type Algorithm = (typeof SUPPORTED)[number]

export interface ParsedIntegrity {
  algorithm: Algorithm
  digest: string
}

/** Picks the strongest hash we support out of an SRI string such as `sha256-<base64>`. */
export function parseIntegrity(integrity: string): ParsedIntegrity {
  const parsed = integrity
    .trim()
    .split(/\s+/)
    .map((part) => {
      const dash = part.indexOf('-')
      const algorithm = part.slice(0, dash) as Algorithm
      const digest = part.slice(dash + 1).split('?')[0] ?? ''
      return { algorithm, digest }
    })
    .filter((p) => SUPPORTED.includes(p.algorithm) && p.digest.length > 0)
    .sort((a, b) => SUPPORTED.indexOf(a.algorithm) - SUPPORTED.indexOf(b.algorithm))[0]
  if (!parsed) {
    throw new PatchBackupError(
      'INTEGRITY_MISMATCH',
      `Unsupported integrity ${JSON.stringify(integrity)}: expected sha256-, sha384- or sha512-<base64>.`,
    )
  }
  return parsed
}

export function sha256Integrity(data: Uint8Array | string): string {
  return `sha256-${createHash('sha256').update(data).digest('base64')}`
}

/** sha256 digest in hex of an SRI string, for content-addressed paths and object names. */
export function integrityToHex(integrity: string): string {
  const { algorithm, digest } = parseIntegrity(integrity)
  return `${algorithm}/${Buffer.from(digest, 'base64').toString('hex')}`
}

export function integrityMismatch(
  expected: string,
  actual: string,
  size?: number,
): PatchBackupError {
  const sized = size === undefined ? '' : ` (${size} bytes read)`
  return new PatchBackupError(
    'INTEGRITY_MISMATCH',
    `Stored bytes do not match their integrity: expected ${expected}, got ${actual}${sized}. The backup is corrupt; nothing was written. Run 'patch-backup verify' to find every damaged file.`,
  )
}

/**
 * Passes bytes through and fails as soon as more than `size` bytes (if given) go by. On its own: a
 * restore from a store that verifies its own reads (which can only tell at the end) never writes
 * more than the recorded size of a tampered or bomb-like blob before it stops.
 */
export class SizeCapStream extends Transform {
  protected bytes = 0

  constructor(
    protected readonly integrity: string,
    protected readonly size?: number,
  ) {
    super()
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.bytes += chunk.length
    if (this.size !== undefined && this.bytes > this.size) {
      done(integrityMismatch(this.integrity, `more than ${this.size} bytes`, this.bytes))
      return
    }
    this.passing(chunk)
    done(null, chunk)
  }

  /** Sees each chunk that passes the cap. */
  protected passing(_chunk: Buffer): void {}
}

/** Passes bytes through and fails at the end unless they hash to `integrity` (and size, if given). */
export class VerifyingStream extends SizeCapStream {
  private readonly hash: Hash
  private readonly expected: ParsedIntegrity

  constructor(integrity: string, expectedSize?: number) {
    super(integrity, expectedSize)
    this.expected = parseIntegrity(integrity)
    this.hash = createHash(this.expected.algorithm)
  }

  protected override passing(chunk: Buffer): void {
    this.hash.update(chunk)
  }

  override _flush(done: TransformCallback): void {
    const digest = this.hash.digest('base64')
    if (digest !== this.expected.digest || (this.size !== undefined && this.bytes !== this.size)) {
      done(integrityMismatch(this.integrity, `${this.expected.algorithm}-${digest}`, this.bytes))
      return
    }
    done()
  }
}

/**
 * Throws INTEGRITY_MISMATCH unless `bytes` hash to `integrity` (and have `size` bytes, if given):
 * what `VerifyingStream` checks, for bytes already in memory.
 */
export function verifyBytes(bytes: Uint8Array, integrity: string, size?: number): void {
  const expected = parseIntegrity(integrity)
  if (size !== undefined && bytes.byteLength > size) {
    throw integrityMismatch(integrity, `more than ${size} bytes`, bytes.byteLength)
  }
  const digest = createHash(expected.algorithm).update(bytes).digest('base64')
  if (digest !== expected.digest || (size !== undefined && bytes.byteLength !== size)) {
    throw integrityMismatch(integrity, `${expected.algorithm}-${digest}`, bytes.byteLength)
  }
}

/** Passes bytes through and records their sha256 integrity and size once they have all gone by. */
export class HashingStream extends Transform {
  private readonly hash = createHash('sha256')
  size = 0
  integrity: string | undefined

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.size += chunk.length
    this.hash.update(chunk)
    done(null, chunk)
  }

  override _flush(done: TransformCallback): void {
    this.integrity = `sha256-${this.hash.digest('base64')}`
    done()
  }
}
