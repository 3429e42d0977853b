import path from 'node:path'
import { PatchBackupError } from './errors.js'

/** A file as the service knows it: its manifest key and where it lives on disk. */
export interface ProjectFile {
  /** The path as given, normalized: the manifest key and the input of the store key. */
  readonly key: string
  readonly absolute: string
}

const WINDOWS_DRIVE = /^[A-Za-z]:\//

function invalid(value: string, why: string): PatchBackupError {
  return new PatchBackupError(
    'INVALID_PATH',
    `Invalid file path ${JSON.stringify(value)}: ${why}.`,
    {
      path: value,
    },
  )
}

/** `./a/../b.js` -> `b.js`, `a\\b` -> `a/b`; rejects NUL, empty paths and directories. */
export function normalizeFileKey(value: unknown): string {
  if (typeof value !== 'string') throw invalid(String(value), 'expected a string')
  if (value.includes('\0')) throw invalid(value.replaceAll('\0', '\\0'), 'it contains a NUL byte')
  const slashed = value.replaceAll('\\', '/')
  const normalized = path.posix.normalize(slashed)
  if (normalized === '.' || normalized === '' || normalized === '/' || normalized.endsWith('/')) {
    throw invalid(value, 'name a file, not a directory')
  }
  return normalized.startsWith('./') ? normalized.slice(2) : normalized
}

/** True when `child` is `root` or lies below it. Both must be absolute and resolved. */
export function isInside(root: string, child: string): boolean {
  const rel = path.relative(root, child)
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel))
}

/**
 * Resolves a file against the project root and refuses anything that lands outside it,
 * so a manifest key can never make the service read or write elsewhere.
 */
export function resolveProjectFile(root: string, value: unknown): ProjectFile {
  const key = normalizeFileKey(value)
  const native = WINDOWS_DRIVE.test(key) || path.sep === '\\' ? key.replaceAll('/', path.sep) : key
  const absolute = path.resolve(root, native)
  if (!isInside(root, absolute) || absolute === root) {
    throw invalid(
      key,
      `it resolves outside the project root ${root}; give a path inside it or change cwd`,
    )
  }
  return { key, absolute }
}
