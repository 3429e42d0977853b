import { lstat, mkdir, readdir, rename, rm } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import type { StillNeeded } from '@patch-backup/core'
import { freeContentIfUnreferenced, isContentReferenced, listIndexEntries } from './content.js'
import { CONTENT_DIR, contentPathFor, isDeadScratch, TMP_DIR } from './paths.js'

export interface CollectGarbageOptions {
  /**
   * Scratch and trash files younger than this may belong to a call in progress. Default 5 minutes:
   * a put rewrites its scratch file as bytes arrive, and the trash protocol takes milliseconds.
   * Scratch files of writers that are gone are removed whatever their age.
   */
  tmpMaxAgeMs?: number
  now?: () => number
  /** Asked before freeing content no index entry references: `true` keeps it (the service answers from its manifests). */
  stillNeeded?: StillNeeded
}

export interface CollectGarbageResult {
  removedBlobs: number
  freedBytes: number
}

const TRASH = /^patch-backup-trash-(sha1|sha256|sha384|sha512)-([0-9a-f]+)-/

async function list(dir: string): Promise<string[]> {
  return readdir(dir).catch(() => [])
}

function integrityOf(algorithm: string, hex: string): string {
  return `${algorithm}-${Buffer.from(hex, 'hex').toString('base64')}`
}

/** Every content file on disk, as integrity + size: `content-v2/<alg>/<xx>/<yy>/<rest>`. */
async function* contentFiles(
  cachePath: string,
): AsyncGenerator<{ integrity: string; size: number }> {
  const root = join(cachePath, CONTENT_DIR)
  for (const algorithm of await list(root)) {
    for (const a of await list(join(root, algorithm))) {
      for (const b of await list(join(root, algorithm, a))) {
        for (const rest of await list(join(root, algorithm, a, b))) {
          const info = await lstat(join(root, algorithm, a, b, rest)).catch(() => undefined)
          if (info?.isFile())
            yield { integrity: integrityOf(algorithm, a + b + rest), size: info.size }
        }
      }
    }
  }
}

/** Removes the scratch files of puts whose process is gone (killed mid-write). */
export async function removeDeadScratch(cachePath: string): Promise<number> {
  const tmp = join(cachePath, TMP_DIR)
  let removed = 0
  for (const name of await list(tmp)) {
    if (!isDeadScratch(name)) continue
    await rm(join(tmp, name), { force: true, recursive: true })
    removed++
  }
  return removed
}

/**
 * Frees content no index entry references (left by overwrites, or by a crash between writing the
 * bytes and the entry) and clears old scratch files. A parked trash file whose content is still
 * referenced (a remover crashed mid-protocol) is put back instead of deleted.
 */
export async function collectGarbage(
  cachePath: string,
  options: CollectGarbageOptions = {},
): Promise<CollectGarbageResult> {
  const result: CollectGarbageResult = { removedBlobs: 0, freedBytes: 0 }
  const referenced = new Set<string>()
  for await (const entry of listIndexEntries(cachePath)) {
    try {
      referenced.add(contentPathFor(cachePath, entry.integrity))
    } catch {
      // an entry with an unusable integrity references nothing we can find
    }
  }
  for await (const { integrity, size } of contentFiles(cachePath)) {
    if (referenced.has(contentPathFor(cachePath, integrity))) continue
    if (await options.stillNeeded?.(integrity)) continue
    if (await freeContentIfUnreferenced(cachePath, integrity)) {
      result.removedBlobs++
      result.freedBytes += size
    }
  }

  const now = options.now?.() ?? Date.now()
  const maxAge = options.tmpMaxAgeMs ?? 5 * 60 * 1000
  const tmp = join(cachePath, TMP_DIR)
  for (const name of await list(tmp)) {
    const file = join(tmp, name)
    const info = await lstat(file).catch(() => undefined)
    // A parked trash file keeps its content's old mtime (rename does not change it); the rename
    // sets its ctime, which says when a remover parked it.
    const age = info ? now - Math.max(info.mtimeMs, info.ctimeMs) : 0
    if (!info || (age < maxAge && !isDeadScratch(name))) continue
    const trash = TRASH.exec(name)
    if (trash) {
      const integrity = integrityOf(trash[1] as string, trash[2] as string)
      const target = contentPathFor(cachePath, integrity)
      // Asked now, not from the index read at the start: a put may have referenced it since.
      const needed =
        referenced.has(target) ||
        (await isContentReferenced(cachePath, integrity).catch(() => true)) ||
        (await options.stillNeeded?.(integrity)) === true
      if (needed && !(await lstat(target).catch(() => undefined))) {
        await mkdir(dirname(target), { recursive: true })
        await rename(file, target)
        continue
      }
      if (needed) {
        // The content is back in place already; the parked copy is a duplicate.
        await rm(file, { force: true })
        continue
      }
    }
    await rm(file, { force: true, recursive: true })
    result.freedBytes += info.size
  }
  return result
}
