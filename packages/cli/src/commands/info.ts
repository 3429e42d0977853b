import { type BackupInfo, normalizeFileKey, parseUuid } from '@patch-backup/core'
import type { CommandContext } from './context.js'
import { summarize } from './list.js'
import { fileNotFound, patchNotFound } from './not-found.js'

export interface InfoOptions {
  uuid: string
  /** Describe this file's backup instead of the whole patch. */
  file?: string
}

export interface PatchInfo {
  uuid: string
  patchedAt: string
  files: number
  size: number
  /** Manifest fields beyond the standard ones, as they are. */
  extra: Record<string, unknown>
}

export interface FileInfo {
  uuid: string
  path: string
  backup: BackupInfo
}

export type InfoResult = PatchInfo | FileInfo

/** One patch's metadata, or one backed-up file's. */
export async function info(options: InfoOptions, { backups }: CommandContext): Promise<InfoResult> {
  const uuid = parseUuid(options.uuid)
  const manifest = await backups.getPatchMetadata(uuid)
  if (!manifest) throw patchNotFound(uuid)
  if (options.file !== undefined) {
    const key = normalizeFileKey(options.file)
    const backup = manifest.files[key]
    if (!backup) throw fileNotFound(uuid, key)
    return { uuid, path: key, backup }
  }
  const { uuid: _uuid, patchedAt: _at, files: _files, ...extra } = manifest
  return { ...summarize(manifest), uuid, extra }
}
