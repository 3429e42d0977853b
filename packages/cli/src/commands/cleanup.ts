import { PatchBackupError, parseUuid } from '@patch-backup/core'
import type { CommandContext } from './context.js'

export interface CleanupOptions {
  uuids: readonly string[]
}

export interface CleanupResult {
  /** Patches removed, their bytes freed unless another patch still needs them. */
  removed: string[]
  /** Patches that were there when checked, and gone by the time they were removed (another process). */
  notFound: string[]
  errors: { uuid: string; code: string; message: string }[]
}

/**
 * Removes each patch's manifest and frees its bytes. Every uuid is checked first: one that is
 * malformed or names no patch fails the command (`INVALID_UUID`, `PATCH_NOT_FOUND`) before any
 * patch is removed.
 */
export async function cleanup(
  options: CleanupOptions,
  { backups }: CommandContext,
): Promise<CleanupResult> {
  const uuids = [...new Set(options.uuids.map((u) => parseUuid(u)))]
  const known = new Set(await backups.listAllPatches())
  const unknown = uuids.filter((u) => !known.has(u))
  if (unknown.length > 0) {
    const which =
      unknown.length === 1 ? `No patch ${unknown[0]}` : `No patches ${unknown.join(', ')}`
    const where = backups.root === undefined ? 'this store' : backups.root
    throw new PatchBackupError(
      'PATCH_NOT_FOUND',
      `${which} in ${where}, so nothing was removed. Run 'patch-backup list' to see the patches it has, or check --dir.`,
    )
  }
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
