import { type PatchBackupError, parseUuid } from '@patch-backup/core'
import type { CommandContext } from './context.js'

export interface CleanupOptions {
  uuids: readonly string[]
}

export interface CleanupResult {
  /** Patches removed, their bytes freed unless another patch still needs them. */
  removed: string[]
  /** Patches that were not in the store. */
  notFound: string[]
  errors: { uuid: string; code: string; message: string }[]
}

/** Removes each patch's manifest and frees its bytes; every uuid is checked before any is removed. */
export async function cleanup(
  options: CleanupOptions,
  { backups }: CommandContext,
): Promise<CleanupResult> {
  const uuids = [...new Set(options.uuids.map((u) => parseUuid(u)))]
  const result: CleanupResult = { removed: [], notFound: [], errors: [] }
  for (const uuid of uuids) {
    try {
      if (await backups.cleanupBackups(uuid)) result.removed.push(uuid)
      else result.notFound.push(uuid)
    } catch (error) {
      const { code, message } = error as PatchBackupError
      result.errors.push({ uuid, code: code ?? 'UNEXPECTED', message: String(message ?? error) })
    }
  }
  return result
}
