import { type GcReport, PatchBackupError } from '@patch-backup/core'
import type { CommandContext } from './context.js'

export interface GcOptions {
  /** With a remote store: collect even though other machines' manifests cannot be seen. */
  force?: boolean
}

export type GcResult = GcReport

/** Frees store keys and bytes that no manifest references. */
export async function gc(
  options: GcOptions,
  { backups, remote }: CommandContext,
): Promise<GcResult> {
  if (remote !== undefined && !options.force) {
    // gc frees what no manifest *here* references; a bucket other machines also back up to holds
    // keys only their manifests know, and gc would take those.
    throw new PatchBackupError(
      'GC_REFUSED',
      `gc on ${remote} sees only the manifests under this backup root, and would delete backups that other machines sharing the bucket still need. Run it with --force only if no other machine uses this bucket prefix. ('cleanup' is always safe: it frees only bytes no other key uses.)`,
    )
  }
  return backups.gc()
}
