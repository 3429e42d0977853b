import { createHash } from 'node:crypto'
import type { Stats } from 'node:fs'
import { closeSync, constants, fstatSync, lstatSync, openSync, readlinkSync } from 'node:fs'
import { lstat, open, readlink } from 'node:fs/promises'
import { breathe } from '../breathe.js'
import { PatchBackupError } from '../errors.js'
import { readWholeSync } from '../read-sync.js'
import type { BackupInfo } from '../types.js'

/**
 * Where a backed-up file stands now:
 * - `original`: it holds the backed-up bytes;
 * - `patched`: it holds the bytes recorded after the patch (`recordPatched`);
 * - `drifted`: neither, though the patched bytes were recorded (someone else changed it, e.g. a reinstall);
 * - `modified`: it differs from the backup and no patched bytes were recorded to tell more;
 * - `mode-changed`: it holds the backed-up bytes, but its permission bits (rwx) differ from the
 *   recorded mode (restore puts the mode back);
 * - `missing`: there is no file;
 * - `directory`: a directory is where the file was (restore refuses it: `TARGET_NOT_A_FILE`);
 * - `symlink`: a symlink is where the file was (never read through; restore replaces the link);
 * - `not-a-file`: another type (a fifo, a socket, a device): restore refuses it (`TARGET_NOT_A_FILE`);
 * - `unreadable`: a file this process may not read (restore refuses it: `TARGET_UNREADABLE`).
 */
export type FileState =
  | 'original'
  | 'patched'
  | 'drifted'
  | 'modified'
  | 'mode-changed'
  | 'missing'
  | 'directory'
  | 'symlink'
  | 'not-a-file'
  | 'unreadable'

/** What is at a target: a regular file (hashed) or something else (described, never read). */
export type TargetKind = 'file' | 'directory' | 'symlink' | 'other' | 'unreadable'

export interface CurrentFile {
  kind: TargetKind
  /** `sha256-<base64>` of a regular file's bytes; `''` for any other kind. */
  integrity: string
  size: number
  mode: number
  /** A symlink's target. */
  link?: string
  /** Another kind's type (`fifo`, `socket`, `block device`, `character device`). */
  type?: string
  /** Why it could not be read (an errno code such as `EACCES`). */
  reason?: string
  /** A regular file's hard link count (more than 1: other names share its bytes). */
  links?: number
}

function typeOf(info: Stats): string {
  if (info.isFIFO()) return 'fifo'
  if (info.isSocket()) return 'socket'
  if (info.isBlockDevice()) return 'block device'
  if (info.isCharacterDevice()) return 'character device'
  return 'special file'
}

function described(kind: TargetKind, info: Stats, extra: Partial<CurrentFile> = {}): CurrentFile {
  return { kind, integrity: '', size: info.size, mode: info.mode & 0o7777, ...extra }
}

const errnoOf = (error: unknown) => (error as NodeJS.ErrnoException)?.code ?? String(error)

/** Files up to this size are read and hashed with synchronous calls (and may be kept in memory). */
const SMALL_FILE_BYTES = 1024 * 1024

/** What `hashCurrentFile` found, with the bytes it read when asked to keep them. */
export type InspectedFile = CurrentFile & { bytes?: Buffer }

/**
 * Hashes the regular file at `absolute`, or says what else is there; `undefined` if nothing is.
 * Never reads through a symlink, and never opens a fifo or a device (which can block). Small files
 * are read with synchronous calls (lstat, open, fstat, read, close: microseconds each, where each
 * async call is a thread-pool round trip); with `keepBytes`, a file of at most that many bytes
 * comes back with them, so a restore can keep it for undo without reading it again.
 */
export async function hashCurrentFile(
  absolute: string,
  keepBytes = 0,
): Promise<InspectedFile | undefined> {
  await breathe()
  const found = inspectSync(absolute, keepBytes)
  return found === LARGE ? hashCurrentFileStreaming(absolute) : found
}

const LARGE = Symbol('large')

function inspectSync(
  absolute: string,
  keepBytes: number,
): InspectedFile | undefined | typeof LARGE {
  let info: Stats
  try {
    info = lstatSync(absolute)
  } catch (error) {
    const code = errnoOf(error)
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined
    return { kind: 'unreadable', integrity: '', size: 0, mode: 0, reason: code }
  }
  if (info.isSymbolicLink()) {
    let link = ''
    try {
      link = readlinkSync(absolute)
    } catch {}
    return described('symlink', info, { link })
  }
  if (info.isDirectory()) return described('directory', info)
  if (!info.isFile()) return described('other', info, { type: typeOf(info) })
  if (info.size > SMALL_FILE_BYTES) return LARGE
  let fd: number
  try {
    fd = openSync(absolute, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK)
  } catch (error) {
    const code = errnoOf(error)
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined
    if (code === 'ELOOP') return inspectSync(absolute, keepBytes)
    return described('unreadable', info, { reason: code })
  }
  try {
    const opened = fstatSync(fd)
    if (opened.isDirectory()) return described('directory', opened)
    if (!opened.isFile()) return described('other', opened, { type: typeOf(opened) })
    if (opened.size > SMALL_FILE_BYTES) return LARGE
    let bytes: Buffer | undefined
    try {
      bytes = readWholeSync(fd, opened.size)
    } catch (error) {
      return described('unreadable', opened, { reason: errnoOf(error) })
    }
    if (bytes === undefined) return LARGE // it grew since fstat: streamed instead
    const filled = bytes.length
    return {
      kind: 'file',
      integrity: `sha256-${createHash('sha256').update(bytes).digest('base64')}`,
      size: filled,
      mode: opened.mode & 0o7777,
      links: opened.nlink,
      ...(keepBytes > 0 && filled <= keepBytes && { bytes }),
    }
  } finally {
    closeSync(fd)
  }
}

/**
 * Hashes the regular file at `absolute` (streaming), or says what else is there; `undefined` if
 * nothing is. Never reads through a symlink, and never opens a fifo or a device (which can block).
 */
async function hashCurrentFileStreaming(absolute: string): Promise<CurrentFile | undefined> {
  let info: Stats
  try {
    info = await lstat(absolute)
  } catch (error) {
    const code = errnoOf(error)
    // A parent that is not a directory means there is no file either.
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined
    return { kind: 'unreadable', integrity: '', size: 0, mode: 0, reason: code }
  }
  if (info.isSymbolicLink()) {
    const link = await readlink(absolute).catch(() => '')
    return described('symlink', info, { link })
  }
  if (info.isDirectory()) return described('directory', info)
  if (!info.isFile()) return described('other', info, { type: typeOf(info) })
  let handle: Awaited<ReturnType<typeof open>>
  try {
    // O_NOFOLLOW and O_NONBLOCK: if it changed since lstat, neither a link nor a fifo is followed or waited on.
    handle = await open(absolute, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK)
  } catch (error) {
    const code = errnoOf(error)
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined
    if (code === 'ELOOP') return hashCurrentFileStreaming(absolute)
    return described('unreadable', info, { reason: code })
  }
  try {
    const opened = await handle.stat()
    if (opened.isDirectory()) return described('directory', opened)
    if (!opened.isFile()) return described('other', opened, { type: typeOf(opened) })
    const hash = createHash('sha256')
    try {
      for await (const chunk of handle.createReadStream({ autoClose: false })) hash.update(chunk)
    } catch (error) {
      return described('unreadable', opened, { reason: errnoOf(error) })
    }
    return {
      kind: 'file',
      integrity: `sha256-${hash.digest('base64')}`,
      size: opened.size,
      mode: opened.mode & 0o7777,
      links: opened.nlink,
    }
  } finally {
    await handle.close()
  }
}

export function classify(entry: BackupInfo, current: CurrentFile | undefined): FileState {
  if (!current) return 'missing'
  if (current.kind === 'directory') return 'directory'
  if (current.kind === 'symlink') return 'symlink'
  if (current.kind === 'other') return 'not-a-file'
  if (current.kind === 'unreadable') return 'unreadable'
  if (current.integrity === entry.integrity) {
    // Permission bits only: restores never give setuid, setgid or sticky bits unless asked.
    const recorded = entry.mode
    if (typeof recorded === 'number' && (recorded & 0o777) !== (current.mode & 0o777))
      return 'mode-changed'
    return 'original'
  }
  const patched = entry.patchedIntegrity
  if (typeof patched !== 'string') return 'modified'
  return current.integrity === patched ? 'patched' : 'drifted'
}

/** What a restore does to one file: writes it, leaves it (already original), refuses it (drift), or fails. */
export type RestoreAction = 'restore' | 'unchanged' | 'refuse' | 'fail'

/** How the kind of thing at a target is named in messages. */
export function describeTarget(current: CurrentFile): string {
  if (current.kind === 'directory') return 'a directory'
  if (current.kind === 'symlink') return `a symlink to ${current.link ?? '?'}`
  if (current.kind === 'other') return `a ${current.type ?? 'special file'}`
  if (current.kind === 'unreadable') return `unreadable (${current.reason ?? 'unknown'})`
  return `a file holding ${current.integrity}`
}

/**
 * What a restore does to a file in `state`, and the error it reports when it does not restore it.
 * The real restore and its dry run both ask this, so a dry run predicts the run.
 */
export function restoreStep(
  key: string,
  absolute: string,
  entry: BackupInfo,
  current: CurrentFile | undefined,
  options: { force?: boolean } = {},
): { state: FileState; action: RestoreAction; error?: PatchBackupError } {
  const state = classify(entry, current)
  if (state === 'original') return { state, action: 'unchanged' }
  if (state === 'directory' || state === 'not-a-file') {
    return {
      state,
      action: 'fail',
      error: new PatchBackupError(
        'TARGET_NOT_A_FILE',
        `${absolute} is ${describeTarget(current as CurrentFile)}, not the file that was backed up; restore replaces files only. Move or remove it, then restore again.`,
        { path: key },
      ),
    }
  }
  if (state === 'unreadable') {
    return {
      state,
      action: 'fail',
      error: new PatchBackupError(
        'TARGET_UNREADABLE',
        `Cannot read ${absolute} (${current?.reason ?? 'unknown'}): restore reads a file before replacing it, to check it and keep it for undo. Check its permissions and those of its directory; it was left as it was.`,
        { path: key },
      ),
    }
  }
  const recorded = typeof entry.patchedIntegrity === 'string'
  if ((state === 'drifted' || (state === 'symlink' && recorded)) && !options.force) {
    return {
      state,
      action: 'refuse',
      error: new PatchBackupError(
        'DRIFTED',
        `${key} changed since the patch: expected the patched bytes ${String(entry.patchedIntegrity)}, found ${describeTarget(current as CurrentFile)}. Someone else (a reinstall?) rewrote it. Restore with --force (the option force: true) to replace it anyway; what is there now is kept as a snapshot you can undo to.`,
        { path: key },
      ),
    }
  }
  return { state, action: 'restore' }
}
