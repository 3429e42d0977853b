import { createHash, randomUUID } from 'node:crypto'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { isDeadProcess } from '@patch-backup/core'

// ssri (with minipass, two CommonJS files) is loaded only for an integrity string the plain
// parser below does not take: every string this package writes is one `sha256-<base64>`.
let ssriModule: typeof import('ssri') | undefined
function loadSsri(): typeof import('ssri') {
  ssriModule ??= createRequire(import.meta.url)('ssri') as typeof import('ssri')
  return ssriModule
}

/** cacache's content format version: content lives under `content-v2/<algorithm>/`. */
export const CONTENT_DIR = 'content-v2'
/** cacache's index format version: index buckets live under `index-v5/`. */
export const INDEX_DIR = 'index-v5'
/** cacache's scratch directory; `cacache.verify` empties it, so nothing in it must outlive a call. */
export const TMP_DIR = 'tmp'

const TMP_PREFIX = 'patch-backup-tmp-'
const TRASH_PREFIX = 'patch-backup-trash-'

export interface ContentAddress {
  algorithm: string
  hex: string
}

const HEX_LENGTH: Record<string, number> = { sha1: 40, sha256: 64, sha384: 96, sha512: 128 }

/**
 * One hash, nothing else: no options (`?…`), no space, no second hash, canonical padded base64
 * of the algorithm's digest length. For such a string ssri's `parse` yields that one hash, its
 * `pickAlgorithm` picks it, and cacache's own `contentPath` (`parse(…, { single: true })`) files
 * it under the same algorithm and hex: every reading agrees, so no ssri is needed.
 */
const PLAIN_INTEGRITY =
  /^(sha1-[A-Za-z0-9+/]{27}=|sha256-[A-Za-z0-9+/]{43}=|sha384-[A-Za-z0-9+/]{64}|sha512-[A-Za-z0-9+/]{86}==)$/

/**
 * The algorithm and hex digest cacache files the content of `integrity` under: the strongest
 * hash in the string, picked the way cacache picks it (ssri's priority order).
 * Throws on a string that is not an integrity or whose digest has the wrong length.
 */
export function contentAddress(integrity: string): ContentAddress {
  if (typeof integrity === 'string' && PLAIN_INTEGRITY.test(integrity)) {
    const dash = integrity.indexOf('-')
    return {
      algorithm: integrity.slice(0, dash),
      hex: Buffer.from(integrity.slice(dash + 1), 'base64').toString('hex'),
    }
  }
  const parsed = typeof integrity === 'string' ? loadSsri().parse(integrity) : null
  if (!parsed || Object.keys(parsed).length === 0) {
    throw new Error(
      `${JSON.stringify(integrity)} is not an integrity string (expected sha256-<base64>)`,
    )
  }
  const algorithm = parsed.pickAlgorithm()
  const digest = parsed[algorithm]?.[0]?.digest ?? ''
  const hex = Buffer.from(digest, 'base64').toString('hex')
  const expected = HEX_LENGTH[algorithm]
  if (expected === undefined ? hex.length < 8 : hex.length !== expected) {
    throw new Error(`${JSON.stringify(integrity)} has a ${algorithm} digest of the wrong length`)
  }
  return { algorithm, hex }
}

/**
 * Where cacache keeps the bytes of `integrity`:
 * `<cache>/content-v2/<algorithm>/<hex[0:2]>/<hex[2:4]>/<hex[4:]>` (same as cacache's own `contentPath`).
 */
export function contentPathFor(cachePath: string, integrity: string): string {
  const { algorithm, hex } = contentAddress(integrity)
  return join(cachePath, CONTENT_DIR, algorithm, hex.slice(0, 2), hex.slice(2, 4), hex.slice(4))
}

/**
 * The index bucket file holding the entries of `key`:
 * `<cache>/index-v5/<sha256(key)[0:2]>/<[2:4]>/<[4:]>` (same as cacache's own `bucketPath`).
 */
export function indexPathFor(cachePath: string, key: string): string {
  const hex = createHash('sha256').update(key).digest('hex')
  return join(cachePath, INDEX_DIR, hex.slice(0, 2), hex.slice(2, 4), hex.slice(4))
}

/** A fresh, unique scratch file name under `<cache>/tmp/`. */
export function tmpPathFor(cachePath: string): string {
  return join(cachePath, TMP_DIR, `${TMP_PREFIX}${process.pid}-${randomUUID()}`)
}

const SCRATCH = /^patch-backup-tmp-(\d+)-/

/**
 * Whether the scratch file `name` (in `<cache>/tmp/`) was left by a process of this host that is
 * gone: a put killed mid-write. Names without a pid (older versions) are judged by age instead.
 */
export function isDeadScratch(name: string): boolean {
  const pid = Number(SCRATCH.exec(name)?.[1])
  return pid > 0 && isDeadProcess(pid)
}

/** The name every trash file of `integrity` starts with (inside `<cache>/tmp/`). */
export function trashPrefixFor(integrity: string): string {
  const { algorithm, hex } = contentAddress(integrity)
  return `${TRASH_PREFIX}${algorithm}-${hex}-`
}

/** A fresh trash file name for the content of `integrity`, where `remove` parks it while it checks references. */
export function trashPathFor(cachePath: string, integrity: string): string {
  return join(cachePath, TMP_DIR, `${trashPrefixFor(integrity)}${randomUUID()}`)
}
