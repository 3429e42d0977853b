import type { PatchBackupError } from '@patch-backup/core'
import { UsageError } from '../cli/usage-error.js'
import type { CommandContext } from './context.js'

export interface MigrateManifestsOptions {
  /** Show what would move, move nothing. */
  dryRun?: boolean
}

export interface MigrateManifestsResult {
  /** The bucket the manifests went (or would go) to. */
  to: string
  dryRun: boolean
  moved: { uuid: string; files: number; merged: boolean }[]
  errors: { uuid: string; code: string; message: string }[]
}

/**
 * Moves the manifests an older CLI kept under this root (bytes in the bucket, manifests local)
 * into the bucket of `--store`, so every machine with the URL sees those patches too.
 */
export async function migrateManifests(
  options: MigrateManifestsOptions,
  { backups, remote }: CommandContext,
): Promise<MigrateManifestsResult> {
  const parts = backups.manifestParts
  if (remote === undefined || !parts) {
    throw new UsageError(
      'migrate-manifests moves manifests into a bucket: give it with --store s3://<bucket>/<prefix> (or PATCH_BACKUP_STORE).',
      '',
      '',
    )
  }
  const { moveLegacyManifest } = await import('../bucket-manifests.js')
  const result: MigrateManifestsResult = {
    to: remote,
    dryRun: !!options.dryRun,
    moved: [],
    errors: [],
  }
  for (const uuid of await parts.legacy.list()) {
    try {
      const moved = await moveLegacyManifest(parts, uuid, { dryRun: options.dryRun })
      if (moved) result.moved.push(moved)
    } catch (error) {
      const { code, message } = error as PatchBackupError
      result.errors.push({ uuid, code: code ?? 'UNEXPECTED', message: String(message ?? error) })
    }
  }
  return result
}
