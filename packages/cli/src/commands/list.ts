import { PatchBackupError, type PatchManifest, parseUuid } from '@patch-backup/core'
import type { CommandContext } from './context.js'
import { patchNotFound } from './not-found.js'

export interface ListOptions {
  /** List this patch's files; without it, every patch. */
  uuid?: string
}

export interface PatchSummary {
  uuid: string
  patchedAt?: string
  files?: number
  size?: number
  /** Set when the patch's manifest cannot be read. */
  error?: { code: string; message: string }
}

export interface PatchesListing {
  /** The backup root listed (`--dir`, `PATCH_BACKUP_DIR` or `~/.socket`). */
  root?: string
  patches: PatchSummary[]
}

export interface FileSummary {
  path: string
  size: number
  integrity: string
  backedUpAt: string
}

export interface FilesListing {
  uuid: string
  patchedAt: string
  files: FileSummary[]
}

export type ListResult = PatchesListing | FilesListing

export function summarize(manifest: PatchManifest): Required<Omit<PatchSummary, 'error'>> {
  const entries = Object.values(manifest.files)
  return {
    uuid: manifest.uuid,
    patchedAt: manifest.patchedAt,
    files: entries.length,
    size: entries.reduce((sum, e) => sum + e.size, 0),
  }
}

/** Every patch with its file count and size, or one patch's files. */
export async function list(options: ListOptions, { backups }: CommandContext): Promise<ListResult> {
  if (options.uuid !== undefined) {
    const uuid = parseUuid(options.uuid)
    const manifest = await backups.getPatchMetadata(uuid)
    if (!manifest) throw patchNotFound(uuid)
    const files = Object.keys(manifest.files)
      .sort()
      .map((path) => {
        const e = manifest.files[path]
        return {
          path,
          size: e?.size ?? 0,
          integrity: e?.integrity ?? '',
          backedUpAt: e?.backedUpAt ?? '',
        }
      })
    return { uuid, patchedAt: manifest.patchedAt, files }
  }
  const patches: PatchSummary[] = []
  for (const uuid of await backups.listAllPatches()) {
    try {
      const manifest = await backups.getPatchMetadata(uuid)
      // Gone between list and read (cleaned up meanwhile): not there any more.
      if (manifest) patches.push({ ...summarize(manifest), uuid })
    } catch (error) {
      const { code, message } =
        error instanceof PatchBackupError
          ? error
          : { code: 'UNEXPECTED', message: error instanceof Error ? error.message : String(error) }
      patches.push({ uuid, error: { code, message } })
    }
  }
  return backups.root === undefined ? { patches } : { root: backups.root, patches }
}
