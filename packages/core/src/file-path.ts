import path from 'node:path'
import { PatchBackupError } from './errors.js'

/** A file as the service knows it: its manifest key and where it lives on disk. */
export interface ProjectFile {
  /** The path as given, normalized: the manifest key and the input of the store key. */
  readonly key: string
  readonly absolute: string
  /** Inside a confining project root: reads and writes are kept inside it (no symlink out). */
  readonly confined: boolean
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
  return createFilePaths({ projectRoot: root }).resolve(value)
}

/** What a file path resolves against, and whether the service is confined to a project root. */
export interface FilePathOptions {
  /** Where relative paths resolve when there is no `projectRoot`. Default: `process.cwd()` at each call. */
  cwd?: string
  /**
   * Confines the service to this directory: relative paths resolve against it, a path inside it
   * is keyed by its path relative to it (one file, one key), anything else is `INVALID_PATH`.
   */
  projectRoot?: string
  /**
   * With `projectRoot`: `'allow'` takes an absolute path outside it as it is, unconfined (as
   * without `projectRoot`); a relative one that climbs out is still refused. Default `'refuse'`.
   */
  outsideProject?: 'refuse' | 'allow'
}

/** How the service turns the paths it is given, and the keys its manifests hold, into files. */
export interface FilePaths {
  /** The confining project root, absolute; `undefined` when the service takes any path. */
  readonly projectRoot: string | undefined
  /** A path a caller gave: its manifest key (project-relative inside a project root) and file. */
  resolve(value: unknown): ProjectFile
  /** A key a manifest holds: the key stays exactly as recorded (the store key hashes it). */
  fromKey(key: string): ProjectFile
}

function toNative(key: string): string {
  return WINDOWS_DRIVE.test(key) || path.sep === '\\' ? key.replaceAll('/', path.sep) : key
}

function outsideRoot(key: string, root: string): PatchBackupError {
  return invalid(
    key,
    `it resolves outside the project root ${root}; give a path inside it, or allow absolute paths outside it (the option outsideProject: 'allow', the CLI's --allow-outside)`,
  )
}

export function createFilePaths(options: FilePathOptions = {}): FilePaths {
  const projectRoot =
    options.projectRoot === undefined ? undefined : path.resolve(options.projectRoot)
  const allowOutside = options.outsideProject === 'allow'
  const cwd = () => path.resolve(options.cwd ?? process.cwd())

  function locate(key: string): { absolute: string; confined: boolean } {
    const native = toNative(key)
    if (projectRoot === undefined) return { absolute: path.resolve(cwd(), native), confined: false }
    const absolute = path.resolve(projectRoot, native)
    if (isInside(projectRoot, absolute) && absolute !== projectRoot) {
      return { absolute, confined: true }
    }
    if (allowOutside && path.isAbsolute(native)) return { absolute, confined: false }
    throw outsideRoot(key, projectRoot)
  }

  return {
    projectRoot,
    resolve(value) {
      const given = normalizeFileKey(value)
      const { absolute, confined } = locate(given)
      if (!confined || projectRoot === undefined) return { key: given, absolute, confined }
      const key = path.relative(projectRoot, absolute).split(path.sep).join('/')
      return { key, absolute, confined }
    },
    fromKey(key) {
      const { absolute, confined } = locate(normalizeFileKey(key))
      return { key, absolute, confined }
    },
  }
}
