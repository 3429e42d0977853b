import { randomBytes } from 'node:crypto'
import {
  closeSync,
  fchmodSync,
  lstatSync,
  mkdirSync,
  openSync,
  realpathSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs'
import { chmod, open, readdir, rename, rm, stat, symlink } from 'node:fs/promises'
import path from 'node:path'
import type { Readable, Transform } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { PatchBackupError } from '../errors.js'
import { isInside } from '../file-path.js'

function outside(target: string, through: string, root: string): PatchBackupError {
  return new PatchBackupError(
    'INVALID_PATH',
    `Refusing to touch ${target}: ${through} leads outside the project root ${root}. Remove the symlink or restore from another cwd.`,
    { path: target },
  )
}

/**
 * Creates the missing parent directories of `target` one level at a time, refusing any
 * existing component that is a symlink leading outside `realRoot` (mkdir -p would follow it).
 */
export async function ensureParentInside(
  root: string,
  realRoot: string,
  target: string,
): Promise<void> {
  // Synchronous calls: an lstat per directory level is microseconds, a round trip each is not.
  const parts = path.relative(root, path.dirname(target)).split(path.sep).filter(Boolean)
  let current = root
  for (const part of parts) {
    current = path.join(current, part)
    const info = lstatSync(current, { throwIfNoEntry: false })
    if (!info) {
      try {
        mkdirSync(current)
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
      }
      continue
    }
    if (info.isSymbolicLink()) {
      const resolved = realpathSync.native(current)
      if (!isInside(realRoot, resolved)) throw outside(target, current, realRoot)
    }
  }
}

/**
 * Refuses to act on `target` unless its directory, resolved now (after every symlink), is inside
 * `realRoot`. Undo and recovery call it at the moment they delete, rename or write, because the
 * project may have changed since the restore they finish (a directory became a symlink, a journal
 * was edited). Resolves `false` when the directory is gone: there is nothing there to touch.
 */
export async function assertDirectoryInsideNow(realRoot: string, target: string): Promise<boolean> {
  let resolved: string
  try {
    resolved = realpathSync.native(path.dirname(target))
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false
    throw error
  }
  if (!isInside(realRoot, resolved)) throw outside(target, path.dirname(target), realRoot)
  return true
}

/** Refuses a source file whose real location (after symlinks) is outside the project. */
export async function assertSourceInside(realRoot: string, source: string): Promise<void> {
  const resolved = realpathSync.native(source)
  if (!isInside(realRoot, resolved)) throw outside(source, resolved, realRoot)
}

async function currentMode(target: string): Promise<number | undefined> {
  try {
    return (await stat(target)).mode & 0o7777
  } catch {
    return undefined
  }
}

// Temp files beside targets carry their writer's pid, so a later call can tell a dead writer's.
const TEMP = /^\.pb-(\d+)-[0-9a-f]{16}\.tmp$/

function tempName(): string {
  return `.pb-${process.pid}-${randomBytes(8).toString('hex')}.tmp`
}

/**
 * Whether process `pid` of this host is gone, so a temp file named for it is garbage. This process
 * is never gone; a pid the OS reused reads as alive, which only keeps a temp file longer.
 */
export function isDeadProcess(pid: number): boolean {
  if (pid === process.pid) return false
  try {
    process.kill(pid, 0)
    return false
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ESRCH'
  }
}

/**
 * Removes the temp files that restores killed mid-write left in `dirs` (beside their targets).
 * Only those of processes that are gone: a live restore's temp is about to be renamed.
 */
export async function removeDeadTemps(dirs: Iterable<string>): Promise<number> {
  let removed = 0
  for (const dir of dirs) {
    let names: string[]
    try {
      names = await readdir(dir)
    } catch {
      continue // gone or unreadable: nothing of ours to remove
    }
    for (const name of names) {
      const pid = TEMP.exec(name)?.[1]
      if (pid === undefined || !isDeadProcess(Number(pid))) continue
      await rm(path.join(dir, name), { force: true }).catch(() => {})
      removed++
    }
  }
  return removed
}

/** Bytes queued for the disk before the source is paused: lets reading, hashing and writing overlap. */
const WRITE_QUEUE = 2 * 1024 * 1024

/** Opens the bytes to write; called only once the file to write them into exists. */
export type OpenSource = () => Promise<Readable>

/**
 * Writes the bytes `openSource` gives (through `through`) into `file`, which must not exist yet,
 * then gives it `mode`. The file is created before the source is opened, so a stream error never
 * goes unheard while the file is being created, and on failure the file is always there to remove.
 */
export async function writeNewFile(
  file: string,
  openSource: OpenSource,
  mode: number,
  through: Transform[] = [],
): Promise<void> {
  const handle = await open(file, 'wx', 0o600)
  let source: Readable | undefined
  try {
    source = await openSource()
    await pipeline([source, ...through, handle.createWriteStream({ highWaterMark: WRITE_QUEUE })])
    // After the write: writing clears setuid and setgid bits.
    await chmod(file, mode)
  } catch (error) {
    source?.destroy()
    await handle.close().catch(() => {})
    await rm(file, { force: true })
    throw error
  }
}

/** Makes `target` the symlink `link` (temp + rename: whatever is there is replaced, not followed). */
export async function replaceWithSymlink(target: string, link: string): Promise<void> {
  const temp = path.join(path.dirname(target), tempName())
  await symlink(link, temp)
  try {
    await rename(temp, target)
  } catch (error) {
    await rm(temp, { force: true })
    throw error
  }
}

/**
 * Writes the bytes to a temp file beside `target`, then renames it over the target. The target
 * is never half-written, and a symlink or hardlink at the target is replaced, not written through.
 */
export async function writeAtomically(
  target: string,
  openSource: OpenSource,
  mode?: number,
  through: Transform[] = [],
): Promise<void> {
  const temp = path.join(path.dirname(target), tempName())
  const finalMode = mode ?? (await currentMode(target)) ?? 0o644
  await writeNewFile(temp, openSource, finalMode, through)
  try {
    await rename(temp, target)
  } catch (error) {
    await rm(temp, { force: true })
    throw error
  }
}

/**
 * `writeNewFile` for bytes in memory, with synchronous calls (open, write, fchmod, close): `file`
 * must not exist yet; on failure it is removed.
 */
export function writeNewFileSync(file: string, bytes: Uint8Array, mode: number): void {
  const fd = openSync(file, 'wx', 0o600)
  try {
    let written = 0
    while (written < bytes.byteLength) written += writeSync(fd, bytes, written)
    // After the write: writing clears setuid and setgid bits.
    fchmodSync(fd, mode)
  } catch (error) {
    closeSync(fd)
    rmSync(file, { force: true })
    throw error
  }
  closeSync(fd)
}

/** `writeAtomically` for bytes in memory, with synchronous calls: temp beside `target`, then rename. */
export function writeAtomicallySync(target: string, bytes: Uint8Array, mode?: number): void {
  const temp = path.join(path.dirname(target), tempName())
  let finalMode = mode
  if (finalMode === undefined) {
    try {
      finalMode = statSync(target).mode & 0o7777
    } catch {
      finalMode = 0o644
    }
  }
  writeNewFileSync(temp, bytes, finalMode)
  try {
    renameSync(temp, target)
  } catch (error) {
    rmSync(temp, { force: true })
    throw error
  }
}
