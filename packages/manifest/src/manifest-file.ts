import { readFile as readFileCallback } from 'node:fs'
import { promisify } from 'node:util'
import {
  isDeadProcess,
  isValidUuid,
  PatchBackupError,
  type PatchManifest,
} from '@patch-backup/core'

// The callback API costs fewer thread-pool round trips than fs/promises' chunked readFile.
const readFile = promisify(readFileCallback)

const MANIFEST_SUFFIX = '.json'

/** `<uuid>.json`: the only names `list()` reports. */
export function manifestFileName(uuid: string): string {
  return `${uuid}${MANIFEST_SUFFIX}`
}

/** `<uuid>.json.lock`: proper-lockfile's own naming, and never a manifest name (it does not end in `.json`). */
export function lockFileName(uuid: string): string {
  return `${uuid}${MANIFEST_SUFFIX}.lock`
}

/**
 * `.<uuid>.json.<pid>.<random>.tmp`: the leading dot can never start a uuid and the name
 * does not end in `.json`, so a temp file is never taken for a manifest.
 */
export function tempFileName(uuid: string): string {
  return `.${uuid}${MANIFEST_SUFFIX}.${process.pid}.${Math.random().toString(36).slice(2, 10)}.tmp`
}

const TEMP = /^\..+\.json\.(\d+)\.[0-9a-z]+\.tmp$/

/** Whether a directory entry is the temp file of a manifest write whose process is gone (killed mid-write). */
export function isDeadTempFile(name: string): boolean {
  const pid = Number(TEMP.exec(name)?.[1])
  return pid > 0 && isDeadProcess(pid)
}

/** The uuid a directory entry is the manifest of, or `undefined` for anything else. */
export function uuidOfFileName(name: string): string | undefined {
  if (!name.endsWith(MANIFEST_SUFFIX)) return undefined
  const uuid = name.slice(0, -MANIFEST_SUFFIX.length)
  return isValidUuid(uuid) ? uuid : undefined
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** Why `value`'s top level is not a manifest of `uuid` (its entries unchecked), or `undefined`. */
export function topLevelShapeProblem(value: unknown, uuid: string): string | undefined {
  if (!isRecord(value)) return 'it is not a JSON object'
  if (typeof value.uuid !== 'string') return '"uuid" is not a string'
  if (value.uuid !== uuid)
    return `"uuid" is ${JSON.stringify(value.uuid)}, not ${JSON.stringify(uuid)}`
  if (typeof value.patchedAt !== 'string') return '"patchedAt" is not a string'
  if (!isRecord(value.files)) return '"files" is not an object'
  return undefined
}

/** Why the entry of `path` is not a backup entry, or `undefined`. Extra fields are fine. */
export function entryShapeProblem(path: string, entry: unknown): string | undefined {
  const where = `"files"[${JSON.stringify(path)}]`
  if (!isRecord(entry)) return `${where} is not an object`
  if (typeof entry.integrity !== 'string') return `${where}.integrity is not a string`
  if (typeof entry.size !== 'number' || !Number.isFinite(entry.size) || entry.size < 0) {
    return `${where}.size is not a non-negative number`
  }
  for (const field of ['backedUpAt', 'originalPath'] as const) {
    if (entry[field] !== undefined && typeof entry[field] !== 'string') {
      return `${where}.${field} is not a string`
    }
  }
  if (entry.mode !== undefined && typeof entry.mode !== 'number')
    return `${where}.mode is not a number`
  return undefined
}

/**
 * Why `value` is not a manifest of `uuid`, or `undefined` when it is one. Extra fields are fine.
 * `{ entries: false }` checks the top level only.
 */
export function manifestShapeProblem(
  value: unknown,
  uuid: string,
  options: { entries?: boolean } = {},
): string | undefined {
  const top = topLevelShapeProblem(value, uuid)
  if (top !== undefined || options.entries === false) return top
  for (const [path, entry] of Object.entries((value as { files: Record<string, unknown> }).files)) {
    const problem = entryShapeProblem(path, entry)
    if (problem !== undefined) return problem
  }
  return undefined
}

function corrupt(path: string, problem: string, cause?: unknown): PatchBackupError {
  return new PatchBackupError(
    'MANIFEST_CORRUPT',
    `The patch manifest ${path} is corrupt: ${problem}. Restore the file from a backup, or delete it to forget this patch (the backed-up bytes it referenced are then freed by garbage collection).`,
    { path, cause },
  )
}

/** Parses manifest text read from `path`; throws MANIFEST_CORRUPT when it is not a manifest of `uuid`. */
export function parseManifest(text: string, path: string, uuid: string): PatchManifest {
  let value: unknown
  try {
    // A byte-order mark from a hand edit on Windows is not corruption.
    value = JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text)
  } catch (error) {
    const detail = text.length === 0 ? 'the file is empty' : 'it is not valid JSON (truncated?)'
    throw corrupt(path, detail, error)
  }
  const problem = manifestShapeProblem(value, uuid)
  if (problem !== undefined) throw corrupt(path, problem)
  return value as PatchManifest
}

/** The manifest at `path`, or `undefined` when there is no file. */
export async function readManifest(path: string, uuid: string): Promise<PatchManifest | undefined> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw unreadable(path, error)
  }
  return parseManifest(text, path, uuid)
}

export function unreadable(path: string, error: unknown): PatchBackupError {
  return new PatchBackupError(
    'MANIFEST_UNREADABLE',
    `Cannot read the patch manifest ${path}: ${(error as Error).message}. Check that it is a regular file this user can read.`,
    { path, cause: error },
  )
}
