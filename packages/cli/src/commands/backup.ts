import { stat } from 'node:fs/promises'
import path from 'node:path'
import {
  type CreateBackupsResult,
  hashCurrentFile,
  parseUuid,
  resolveProjectFile,
} from '@patch-backup/core'
import type { CommandContext } from './context.js'

export interface BackupOptions {
  uuid: string
  files: readonly string[]
  /** Replace existing backups with the files' current bytes (default: the first backup wins). */
  overwrite?: boolean
}

/** A file that already had a backup in the patch: the first backup was kept (no `--overwrite`). */
export interface KeptBackup {
  path: string
  /** The backup kept (the first one, usually the pre-patch bytes). */
  backupIntegrity: string
  /** The file on disk now; absent when it could not be read. */
  currentIntegrity?: string
  /** The file no longer holds the kept backup's bytes (it was patched since, or changed). */
  differs: boolean
}

export interface BackupResult extends CreateBackupsResult {
  uuid: string
  /** Bytes of every file now backed up under the patch by this call. */
  size: number
  /** Files whose earlier backup was kept rather than replaced (without `--overwrite`). */
  kept: KeptBackup[]
}

async function sizeOf(file: string): Promise<number> {
  return stat(file).then(
    (info) => info.size,
    () => 0,
  )
}

/** Backs up `files` under patch `uuid`: one manifest write per batch, store writes in parallel. */
export async function backup(
  options: BackupOptions,
  { backups, progress }: CommandContext,
): Promise<BackupResult> {
  const uuid = parseUuid(options.uuid)
  const files = [...new Set(options.files)]
  // Keep-first is silent in the service: note which files already had a backup, to say so.
  const before = options.overwrite ? undefined : (await backups.getPatchMetadata(uuid))?.files
  const result: CreateBackupsResult = { backedUp: [], failed: [], errors: [], files: {} }
  // One batch, unless a bar is drawn: then ~20 batches, so files advance as well as bytes.
  let batch = files.length
  if (progress) {
    const sizes = await Promise.all(files.map((f) => sizeOf(path.resolve(backups.cwd, f))))
    progress.start('backup', { files: files.length, bytes: sizes.reduce((a, b) => a + b, 0) })
    batch = Math.max(64, Math.ceil(files.length / 20))
  }
  try {
    for (let i = 0; i < files.length; i += batch) {
      const part = await backups.createBackups(uuid, files.slice(i, i + batch), {
        overwrite: !!options.overwrite,
      })
      result.backedUp.push(...part.backedUp)
      result.failed.push(...part.failed)
      result.errors.push(...part.errors)
      Object.assign(result.files, part.files)
    }
  } finally {
    progress?.stop()
  }
  const size = Object.values(result.files).reduce((sum, info) => sum + info.size, 0)
  const kept: KeptBackup[] = []
  for (const file of before ? files : []) {
    let key: string
    try {
      key = resolveProjectFile(backups.cwd, file).key
    } catch {
      continue // reported in `errors`
    }
    const info = result.files[key]
    if (!info || before?.[key]?.integrity !== info.integrity) continue
    const current = await hashCurrentFile(resolveProjectFile(backups.cwd, key).absolute).catch(
      () => undefined,
    )
    const entry: KeptBackup = {
      path: key,
      backupIntegrity: info.integrity,
      differs: current?.integrity !== info.integrity,
    }
    if (current) entry.currentIntegrity = current.integrity
    kept.push(entry)
  }
  return { uuid, size, ...result, kept }
}
