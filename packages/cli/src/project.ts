// Which project a CLI run works on, and where its file arguments resolve. It must not open a store
// or the service: it runs before either, on every command.

import { readFile, stat } from 'node:fs/promises'
import path from 'node:path'
import { type FilePaths, normalizeFileKey, type ProjectFile } from '@patch-backup/core'

/** A run's project: manifest keys resolve against `projectRoot`, file arguments against `cwd`. */
export interface RunProject {
  projectRoot: string
  cwd: string
  /** Where `projectRoot` came from, for messages and `info`. */
  from: '--cwd' | 'manifest' | 'search' | 'cwd'
}

/** Why a `--cwd` cannot be used; `undefined` when it is a directory. */
export async function badCwd(dir: string): Promise<string | undefined> {
  const info = await stat(dir).catch((error: NodeJS.ErrnoException) => error)
  if (info instanceof Error) {
    return info.code === 'ENOENT'
      ? `--cwd ${dir} does not exist`
      : `--cwd ${dir} cannot be read (${info.code ?? info.message})`
  }
  return info.isDirectory() ? undefined : `--cwd ${dir} is not a directory`
}

async function holds(dir: string, name: string): Promise<boolean> {
  return stat(path.join(dir, name)).then(
    () => true,
    () => false,
  )
}

/**
 * The nearest directory at or above `from` that holds a `package.json` or a `node_modules`,
 * skipping every directory inside a `node_modules` tree: each installed package has a
 * `package.json` of its own, and a run from `node_modules/lodash` means the project that
 * installed lodash. Whichever of the two is found first, walking up, wins. `from` when none.
 */
export async function findProjectRoot(from: string): Promise<string> {
  const start = path.resolve(from)
  const parts = start.split(path.sep)
  const firstModules = parts.indexOf('node_modules')
  // Inside node_modules: start at the directory that holds the outermost node_modules.
  let dir = firstModules > 0 ? parts.slice(0, firstModules).join(path.sep) || path.sep : start
  for (;;) {
    if ((await holds(dir, 'package.json')) || (await holds(dir, 'node_modules'))) return dir
    const parent = path.dirname(dir)
    if (parent === dir) return firstModules > 0 ? dir : start
    dir = parent
  }
}

/** The project root a patch's manifest recorded, if it has one and it is still a directory. */
export async function recordedRoot(
  manifestsDir: string,
  uuid: string,
): Promise<string | undefined> {
  try {
    const manifest = JSON.parse(await readFile(path.join(manifestsDir, `${uuid}.json`), 'utf8'))
    const root = manifest?.projectRoot
    if (typeof root !== 'string' || !path.isAbsolute(root)) return undefined
    return (await stat(root)).isDirectory() ? root : undefined
  } catch {
    return undefined // no manifest yet, or one the service will report as corrupt
  }
}

/**
 * The project of a run: `--cwd` when given (it also wins over a recorded root, so a moved project
 * can be named); else the root the patch's manifest recorded; else the nearest enclosing project.
 */
export async function runProject(options: {
  cwdFlag?: string
  manifestsDir?: string
  uuid?: string
}): Promise<RunProject> {
  if (options.cwdFlag !== undefined) {
    const dir = path.resolve(options.cwdFlag)
    return { projectRoot: dir, cwd: dir, from: '--cwd' }
  }
  const cwd = process.cwd()
  if (options.manifestsDir && options.uuid) {
    const recorded = await recordedRoot(options.manifestsDir, options.uuid)
    if (recorded) return { projectRoot: recorded, cwd, from: 'manifest' }
  }
  const found = await findProjectRoot(cwd)
  return { projectRoot: found, cwd, from: found === cwd ? 'cwd' : 'search' }
}

/** A file argument: resolved against where the command runs, then keyed by the service's rules. */
export function fileArgument(paths: FilePaths, cwd: string, arg: string): ProjectFile {
  return paths.resolve(path.resolve(cwd, normalizeFileKey(arg)))
}

/**
 * The key under which `files` holds the file an argument names, however either was spelled: the
 * project-relative key, the argument as typed, or the absolute path (a seed manifest's key).
 * The project-relative key when none is there.
 */
export function manifestKey(
  paths: FilePaths,
  cwd: string,
  files: Record<string, unknown>,
  arg: string,
): string {
  const file = fileArgument(paths, cwd, arg)
  const spellings = [file.key, normalizeFileKey(arg), file.absolute.split(path.sep).join('/')]
  return spellings.find((key) => files[key] !== undefined) ?? file.key
}
