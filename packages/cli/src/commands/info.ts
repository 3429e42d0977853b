import { type BackupInfo, parseUuid } from '@patch-backup/core'
import type { PolicySummary } from '../open.js'
import { manifestKey } from '../project.js'
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
  /** Bytes the store holds for them, when recorded (compression, encryption): `storedSize` summed, `size` where absent. */
  storedSize?: number
  /** The project root the patch was made in (relative keys resolve against it), when recorded. */
  projectRoot?: string
  /** Manifest fields beyond the standard ones, as they are. */
  extra: Record<string, unknown>
  /** The storage policy of this run (config file, --key-file, --no-auto-prune). */
  policy?: PolicySummary
}

export interface FileInfo {
  uuid: string
  path: string
  backup: BackupInfo
  policy?: PolicySummary
}

export type InfoResult = PatchInfo | FileInfo

/** One patch's metadata, or one backed-up file's. */
export async function info(
  options: InfoOptions,
  { backups, policy }: CommandContext,
): Promise<InfoResult> {
  const uuid = parseUuid(options.uuid)
  const manifest = await backups.getPatchMetadata(uuid)
  if (!manifest) throw patchNotFound(uuid)
  if (options.file !== undefined) {
    const key = manifestKey(backups.paths, backups.cwd, manifest.files, options.file)
    const backup = manifest.files[key]
    if (!backup) throw fileNotFound(uuid, key)
    return policy ? { uuid, path: key, backup, policy } : { uuid, path: key, backup }
  }
  const { uuid: _uuid, patchedAt: _at, files: _files, projectRoot, ...extra } = manifest
  const result: PatchInfo = { ...summarize(manifest), uuid, extra }
  if (typeof projectRoot === 'string') result.projectRoot = projectRoot
  else if (projectRoot !== undefined) extra.projectRoot = projectRoot
  const entries = Object.values(manifest.files)
  if (entries.some((e) => e.storedSize !== undefined))
    result.storedSize = entries.reduce((sum, e) => sum + (e.storedSize ?? e.size), 0)
  if (policy) result.policy = policy
  return result
}
