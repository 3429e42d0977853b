// The in-memory adapters: a store and a manifest repository that keep everything in this process.
// They never touch the file system or the environment, so tests and examples stay hermetic.

import { Readable } from 'node:stream'
import { integrityMismatch, sha256Integrity } from '../integrity.js'
import type { BackupStore, PutResult } from '../types.js'
import { readAll } from './read-all.js'

export interface MemoryStore extends BackupStore {
  /** Test hook: replaces the stored bytes of `integrity` (e.g. to simulate corruption). */
  tamper(integrity: string, bytes: Uint8Array): void
  /** Test hook: drops the bytes of `integrity` while keys still point at them. */
  lose(integrity: string): void
  /** Number of distinct blobs held. */
  readonly blobCount: number
}

/** A `BackupStore` in memory, for tests and the conformance suite. */
export function createMemoryStore(): MemoryStore {
  const keys = new Map<string, string>()
  const blobs = new Map<string, Buffer>()

  return {
    verifiesReads: true,
    async put(key, data): Promise<PutResult> {
      const bytes = await readAll(data)
      const integrity = sha256Integrity(bytes)
      if (!blobs.has(integrity)) blobs.set(integrity, bytes)
      keys.set(key, integrity)
      return { integrity, size: bytes.length }
    },
    async open(_key, integrity) {
      const bytes = blobs.get(integrity)
      if (!bytes) return undefined
      // Lazy: the check runs when the stream is read, so an unread stream never errors unheard.
      return Readable.from(
        (async function* () {
          const actual = sha256Integrity(bytes)
          if (actual !== integrity) throw integrityMismatch(integrity, actual, bytes.length)
          yield bytes
        })(),
      )
    },
    async openKey(key) {
      const integrity = keys.get(key)
      return integrity === undefined ? undefined : this.open(key, integrity)
    },
    async has(key) {
      const integrity = keys.get(key)
      return integrity !== undefined && blobs.has(integrity)
    },
    async remove(key, opts) {
      const integrity = keys.get(key)
      if (integrity === undefined) return false
      keys.delete(key)
      if (
        opts?.freeContent &&
        ![...keys.values()].includes(integrity) &&
        !(await opts.stillNeeded?.(integrity))
      )
        blobs.delete(integrity)
      return true
    },
    async *keys(prefix) {
      for (const key of [...keys.keys()]) if (key.startsWith(prefix)) yield key
    },
    tamper(integrity, bytes) {
      blobs.set(integrity, Buffer.from(bytes))
    },
    lose(integrity) {
      blobs.delete(integrity)
    },
    get blobCount() {
      return blobs.size
    },
  }
}
