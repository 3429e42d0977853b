import { readdir, stat } from 'node:fs/promises'
import path from 'node:path'
import {
  type CreateBackupsResult,
  hashCurrentFile,
  normalizeFileKey,
  parseUuid,
} from '@patch-backup/core'
import type { CommandContext } from './context.js'

export interface BackupOptions {
  uuid: string
  /** Files, or directories: a directory stands for every regular file under it. */
  files: readonly string[]
  /** Replace existing backups with the files' current bytes (default: the first backup wins). */
  overwrite?: boolean
  /** Give each file with other hard links its own copy before backing it up (`--break-links`). */
  breakLinks?: boolean
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
  /** Each directory given, as given, with how many files under it were backed up or tried. */
  directories: { path: string; files: number }[]
}

/** Regular files under `dir`, as paths joined onto `given`; symlinks and other types are skipped. */
async function filesUnder(dir: string, given: string): Promise<string[]> {
  const found: string[] = []
  const entries = await readdir(dir, { withFileTypes: true })
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
  for (const entry of entries) {
    const relative = path.posix.join(given, entry.name)
    if (entry.isDirectory()) found.push(...(await filesUnder(path.join(dir, entry.name), relative)))
    else if (entry.isFile()) found.push(relative)
  }
  return found
}

/**
 * The files to back up: each argument that is a directory (`dir` or `dir/`) becomes the regular
 * files under it, recursively, so a patch that touches a whole package can name the package.
 */
async function expand(cwd: string, args: readonly string[]) {
  const files: string[] = []
  const directories: { path: string; files: number }[] = []
  for (const arg of args) {
    const info = await stat(path.resolve(cwd, arg)).catch(() => undefined)
    if (!info?.isDirectory()) {
      files.push(arg)
      continue
    }
    const under = await filesUnder(path.resolve(cwd, arg), arg.replace(/[\\/]+$/, '') || '.')
    directories.push({ path: arg, files: under.length })
    files.push(...under)
  }
  return { files: [...new Set(files)], directories }
}

/** `arg` against `cwd`, normalized; left as given when it is no usable path (the service says why). */
function absoluteArgument(cwd: string, arg: string): string {
  try {
    return path.resolve(cwd, normalizeFileKey(arg))
  } catch {
    return arg
  }
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
  const { files: given, directories } = await expand(backups.cwd, options.files)
  // Arguments are relative to where the command runs; the service keys each by its path in the
  // project, so every spelling of one file is one key. A bad one is reported by the service.
  const files = given.map((f) => absoluteArgument(backups.cwd, f))
  // Keep-first is silent in the service: note which files already had a backup, to say so.
  const before = options.overwrite ? undefined : (await backups.getPatchMetadata(uuid))?.files
  const result: CreateBackupsResult = { backedUp: [], failed: [], errors: [], files: {} }
  // One batch, unless a bar is drawn: then ~20 batches, so files advance as well as bytes.
  let batch = files.length
  if (progress) {
    const sizes = await Promise.all(files.map((f) => sizeOf(f)))
    progress.start('backup', { files: files.length, bytes: sizes.reduce((a, b) => a + b, 0) })
    batch = Math.max(64, Math.ceil(files.length / 20))
  }
  try {
    for (let i = 0; i < files.length; i += batch) {
      const part = await backups.createBackups(uuid, files.slice(i, i + batch), {
        overwrite: !!options.overwrite,
        breakLinks: !!options.breakLinks,
      })
      result.backedUp.push(...part.backedUp)
      result.failed.push(...part.failed)
      result.errors.push(...part.errors)
      Object.assign(result.files, part.files)
    }
  } finally {
    progress?.stop()
  }
  for (const dir of directories) {
    if (dir.files > 0) continue
    result.failed.push(dir.path)
    result.errors.push({
      path: dir.path,
      code: 'SOURCE_UNREADABLE',
      message: `${dir.path} is a directory with no regular files under it: nothing to back up.`,
    })
  }
  const size = Object.values(result.files).reduce((sum, info) => sum + info.size, 0)
  const kept: KeptBackup[] = []
  for (const file of before ? files : []) {
    let key: string
    let absolute: string
    try {
      ;({ key, absolute } = backups.paths.resolve(file))
    } catch {
      continue // reported in `errors`
    }
    const info = result.files[key]
    if (!info || before?.[key]?.integrity !== info.integrity) continue
    const current = await hashCurrentFile(absolute).catch(() => undefined)
    const entry: KeptBackup = {
      path: key,
      backupIntegrity: info.integrity,
      differs: current?.integrity !== info.integrity,
    }
    if (current?.kind === 'file') entry.currentIntegrity = current.integrity
    kept.push(entry)
  }
  return { uuid, size, ...result, kept, directories }
}
