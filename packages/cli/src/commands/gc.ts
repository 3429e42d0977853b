import type { GcReport } from '@patch-backup/core'
import type { CommandContext } from './context.js'

export interface GcOptions {
  /** Accepted for older scripts: gc on a bucket used to need it, when manifests stayed local. */
  force?: boolean
}

export type GcResult = GcReport

/**
 * Frees store keys and bytes that no manifest references. On a bucket (`--store s3://…`) the
 * manifests are the bucket's, and keys younger than the store's grace period are left alone, so
 * a backup another machine is in the middle of keeps its bytes.
 */
export async function gc(_options: GcOptions, { backups }: CommandContext): Promise<GcResult> {
  return backups.gc()
}
