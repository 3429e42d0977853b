import { createHash } from 'node:crypto'
import { closeSync, constants, fstatSync, mkdirSync, openSync, writeSync } from 'node:fs'
import { dirname } from 'node:path'
import type { PutResult } from '@patch-backup/core'
import { indexPathFor } from './paths.js'

/**
 * The line cacache's `index.insert` appends for `key -> integrity`, byte for byte: a newline, the
 * sha1 of the entry's JSON, a tab, the JSON (`{ key, integrity, time, size }`; cacache leaves
 * `metadata` out when it is undefined). `cacache.get` and `cacache.ls` read it as their own.
 */
export function indexLine(key: string, result: PutResult, time = Date.now()): string {
  const json = JSON.stringify({ key, integrity: result.integrity, time, size: result.size })
  return `\n${createHash('sha1').update(json).digest('hex')}\t${json}`
}

/**
 * Appends the index entry of `key` with synchronous calls: one open/write/close (a `mkdir` only
 * when the bucket's directory is missing). cacache's own insert costs an async `mkdir -p` and an
 * `appendFile` of three thread-pool round trips; at 4 KiB per file those dominate a backup.
 * An append of one short line is a single `write` to an `O_APPEND` file, as cacache's is.
 */
export function appendIndexEntrySync(cachePath: string, key: string, result: PutResult): void {
  const bucket = indexPathFor(cachePath, key)
  const line = indexLine(key, result)
  for (let attempt = 0; ; attempt++) {
    try {
      appendLine(bucket, line)
      return
    } catch (error) {
      // The directory is missing (new shard), or vanished under a concurrent cacache.verify.
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT' || attempt > 1) throw error
      mkdirSync(dirname(bucket), { recursive: true })
    }
  }
}

/**
 * Appends `line` to the bucket file, creating it. Opened without blocking, and refused unless it
 * is a regular file: a fifo in its place would otherwise block the event loop for good.
 */
function appendLine(bucket: string, line: string): void {
  const fd = openSync(
    bucket,
    constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NONBLOCK,
    0o666,
  )
  try {
    if (!fstatSync(fd).isFile()) {
      throw Object.assign(new Error(`${bucket} is not a regular file`), { code: 'EINVAL' })
    }
    const bytes = Buffer.from(line)
    let written = 0
    while (written < bytes.length) written += writeSync(fd, bytes, written)
  } finally {
    closeSync(fd)
  }
}

/**
 * The append step as an object rather than a loose function, so that a test can run a remover
 * between a put's content and its index entry. The put awaits it (a microtask, not a round trip).
 */
export const indexEntries: {
  append(cachePath: string, key: string, result: PutResult): void | Promise<void>
} = {
  append: appendIndexEntrySync,
}
