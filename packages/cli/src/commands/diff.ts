import { isUtf8 } from 'node:buffer'
import { readFile } from 'node:fs/promises'
import {
  classify,
  describeTarget,
  type FileState,
  hashCurrentFile,
  PatchBackupError,
  parseUuid,
} from '@patch-backup/core'
import { manifestKey } from '../project.js'
import type { CommandContext } from './context.js'
import { fileNotFound, patchNotFound } from './not-found.js'
import { readBackup } from './read-backup.js'

export interface DiffOptions {
  uuid: string
  file: string
}

/** How the two sides were compared. */
export type Comparison = 'identical' | 'text' | 'binary' | 'too-large'

export interface DiffResult {
  uuid: string
  path: string
  state: FileState
  comparison: Comparison
  backup: { size: number; integrity: string }
  /** The file on disk; null when it is missing. */
  current: { size: number; integrity: string } | null
  /** Unified diff from the backup to the current file; null unless `comparison` is `text`. */
  diff: string | null
}

/** Above this (either side), a text diff is neither readable nor cheap: sizes and hashes instead. */
export const MAX_TEXT_DIFF_BYTES = 4 * 1024 * 1024

/** Git's rule (a NUL byte early on), plus bytes that are not UTF-8. */
function isBinary(bytes: Buffer): boolean {
  return bytes.subarray(0, 8000).includes(0) || !isUtf8(bytes)
}

/** The backup of one file against the file on disk: a unified diff for text, sizes and hashes otherwise. */
export async function diff(options: DiffOptions, { backups }: CommandContext): Promise<DiffResult> {
  const uuid = parseUuid(options.uuid)
  const manifest = await backups.getPatchMetadata(uuid)
  if (!manifest) throw patchNotFound(uuid)
  const key = manifestKey(backups.paths, backups.cwd, manifest.files, options.file)
  const entry = manifest.files[key]
  if (!entry) throw fileNotFound(uuid, key)
  const { absolute } = backups.paths.fromKey(key)
  const now = await hashCurrentFile(absolute)
  if (now?.kind === 'unreadable') {
    throw new PatchBackupError(
      'SOURCE_UNREADABLE',
      `Cannot read ${absolute} to compare it with its backup (${now.reason ?? 'unknown'}). Check its permissions.`,
      { path: key },
    )
  }
  if (now && now.kind !== 'file') {
    throw new PatchBackupError(
      'TARGET_NOT_A_FILE',
      `${absolute} is ${describeTarget(now)}, not a file: there is nothing to compare with its backup${now.kind === 'symlink' ? ' (diff never reads through a link)' : ''}. 'patch-backup status ${uuid}' shows each file's state.`,
      { path: key },
    )
  }
  const state = classify(entry, now)
  const result: DiffResult = {
    uuid,
    path: key,
    state,
    comparison: 'identical',
    backup: { size: entry.size, integrity: entry.integrity },
    current: now ? { size: now.size, integrity: now.integrity } : null,
    diff: null,
  }
  // mode-changed: the same bytes (status and restore deal with the mode).
  if (state === 'original' || state === 'mode-changed') return result
  if (entry.size > MAX_TEXT_DIFF_BYTES || (now?.size ?? 0) > MAX_TEXT_DIFF_BYTES) {
    result.comparison = 'too-large'
    return result
  }
  const before = await readBackup(backups, uuid, key, entry)
  const after = now ? await readFile(absolute) : Buffer.alloc(0)
  if (isBinary(before) || isBinary(after)) {
    result.comparison = 'binary'
    return result
  }
  result.comparison = 'text'
  // The diff library only for a text diff: imported here, not with the CLI.
  const { createTwoFilesPatch, FILE_HEADERS_ONLY } = await import('diff')
  result.diff = createTwoFilesPatch(
    `a/${key}`,
    now ? `b/${key}` : '/dev/null',
    before.toString('utf8'),
    after.toString('utf8'),
    'backup',
    now ? 'current' : undefined,
    { headerOptions: FILE_HEADERS_ONLY },
  )
  return result
}
