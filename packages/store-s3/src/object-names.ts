import { randomUUID } from 'node:crypto'
import { integrityToHex } from '@patch-backup/core'

/*
 * Where everything lives in the bucket, under the store's prefix:
 *
 *   <prefix>/content/sha256/<hex>            the bytes, named by their sha256
 *   <prefix>/keys/<encoded key>              {"integrity","size"} of one key
 *   <prefix>/refs/sha256/<hex>/<encoded key> empty marker: this key references this content
 *   <prefix>/tmp/<uuid>                      an upload whose hash is not known yet
 *   <prefix>/trash/sha256/<hex>/<uuid>       content parked by a freeing remove (see content.ts)
 */

/** A content address: the algorithm and hex digest, as in `sha256/<hex>`. */
export interface ContentAddress {
  algorithm: string
  hex: string
}

const HEX_LENGTH: Record<string, number> = { sha256: 64, sha384: 96, sha512: 128 }

/**
 * The content address of an integrity string, or `undefined` when its digest has the wrong length
 * (well formed, but no bytes can have it). An unsupported algorithm throws `INTEGRITY_MISMATCH`.
 */
export function contentAddressOf(integrity: string): ContentAddress | undefined {
  const [algorithm = '', hex = ''] = integrityToHex(integrity).split('/')
  return hex.length === HEX_LENGTH[algorithm] ? { algorithm, hex } : undefined
}

/** Bytes left as they are in an encoded key; everything else becomes %XX of its UTF-8 bytes. */
function isPlain(byte: number): boolean {
  return (
    (byte >= 0x30 && byte <= 0x3a) || // 0-9 and ':'
    (byte >= 0x41 && byte <= 0x5a) || // A-Z
    (byte >= 0x61 && byte <= 0x7a) || // a-z
    byte === 0x2d || // -
    byte === 0x5f || // _
    byte === 0x7e // ~
  )
}

/**
 * Percent-encodes a store key (or a prefix of one) into one object-name segment: no `/`, no `.`
 * (so never `.` or `..`), readable for the usual `socket:patch:backup:<uuid>:<hex>` keys.
 * Byte-wise, so the encoding of a prefix is a prefix of the encoding: `keys(prefix)` can list by it.
 */
export function encodeKeyPrefix(key: string): string {
  let out = ''
  for (const byte of Buffer.from(key, 'utf8')) {
    out += isPlain(byte)
      ? String.fromCharCode(byte)
      : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`
  }
  return out
}

/** An encoded key is never empty: the empty key is `%`, which no other key encodes to. */
export function encodeKey(key: string): string {
  return key.length === 0 ? '%' : encodeKeyPrefix(key)
}

export function decodeKey(segment: string): string {
  return segment === '%' ? '' : decodeURIComponent(segment)
}

/** `a//b/` -> `a/b`; an empty prefix puts the layout at the bucket's root. */
export function normalizePrefix(prefix: string | undefined): string {
  return (prefix ?? '')
    .split('/')
    .filter((part) => part.length > 0)
    .join('/')
}

export interface ObjectNames {
  readonly prefix: string
  content(address: ContentAddress): string
  key(key: string): string
  /** Where `keys(prefix)` lists; the names under it end in an encoded key. */
  keysPrefix(keyPrefix: string): string
  ref(address: ContentAddress, key: string): string
  /** Every reference marker of one content address starts with this. */
  refsPrefix(address: ContentAddress): string
  tmp(): string
  trash(address: ContentAddress): string
  /** Every parked copy of one content address starts with this. */
  trashPrefix(address: ContentAddress): string
  /** The encoded key at the end of a name listed under `keysPrefix`. */
  keyOf(name: string): string
}

export function objectNames(prefix: string | undefined): ObjectNames {
  const root = normalizePrefix(prefix)
  const at = (name: string) => (root ? `${root}/${name}` : name)
  const keysRoot = at('keys/')
  const refsPrefix = (a: ContentAddress) => at(`refs/${a.algorithm}/${a.hex}/`)
  const trashPrefix = (a: ContentAddress) => at(`trash/${a.algorithm}/${a.hex}/`)
  return {
    prefix: root,
    content: (a) => at(`content/${a.algorithm}/${a.hex}`),
    key: (key) => `${keysRoot}${encodeKey(key)}`,
    keysPrefix: (keyPrefix) => `${keysRoot}${encodeKeyPrefix(keyPrefix)}`,
    ref: (a, key) => `${refsPrefix(a)}${encodeKey(key)}`,
    refsPrefix,
    tmp: () => at(`tmp/${randomUUID()}`),
    trash: (a) => `${trashPrefix(a)}${randomUUID()}`,
    trashPrefix,
    keyOf: (name) => decodeKey(name.slice(keysRoot.length)),
  }
}
