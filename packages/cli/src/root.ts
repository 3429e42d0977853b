import os from 'node:os'
import path from 'node:path'
import { PatchBackupError } from '@patch-backup/core'

export interface RootOptions {
  /** Explicit root (the CLI's `--dir`); wins over everything. */
  dir?: string
  env?: NodeJS.ProcessEnv
}

/**
 * Where the store lives: `dir`, else `PATCH_BACKUP_DIR`, else `~/.socket`. Read at every call,
 * so a changed HOME or PATCH_BACKUP_DIR applies at once. Never returns a path with a literal `~`.
 */
export function resolveRoot(options: RootOptions = {}): string {
  const env = options.env ?? process.env
  const explicit = options.dir ?? (env.PATCH_BACKUP_DIR || undefined)
  if (explicit !== undefined) {
    if (explicit.trim() === '' || explicit.includes('\0')) {
      throw new PatchBackupError(
        'INVALID_PATH',
        `The backup root ${JSON.stringify(explicit)} is not a usable path.`,
      )
    }
    return path.resolve(expandHome(explicit, env))
  }
  const home = homeDir(env)
  if (!home) {
    throw new PatchBackupError(
      'NO_HOME',
      'No home directory to keep backups in (HOME is not set). Pass --dir <path> or set PATCH_BACKUP_DIR.',
    )
  }
  return path.join(home, '.socket')
}

function homeDir(env: NodeJS.ProcessEnv): string | undefined {
  const fromEnv = process.platform === 'win32' ? env.USERPROFILE : env.HOME
  if (fromEnv !== undefined) return path.isAbsolute(fromEnv) ? fromEnv : undefined
  try {
    const home = os.homedir()
    return home && path.isAbsolute(home) ? home : undefined
  } catch {
    return undefined
  }
}

function expandHome(value: string, env: NodeJS.ProcessEnv): string {
  if (value !== '~' && !value.startsWith('~/')) {
    // `~alice/x` is the shell's to expand; taken literally it would make a `~alice` directory here.
    if (value.startsWith('~')) {
      throw new PatchBackupError(
        'INVALID_PATH',
        `The backup root ${JSON.stringify(value)} starts with ~ but only ~ and ~/ are expanded here. Give an absolute path instead.`,
      )
    }
    return value
  }
  const home = homeDir(env)
  if (!home) {
    throw new PatchBackupError(
      'NO_HOME',
      `Cannot expand ${value}: no home directory. Give an absolute path instead.`,
    )
  }
  return path.join(home, value.slice(1))
}

export function layout(root: string): { cache: string; manifests: string; machine: string } {
  return {
    cache: path.join(root, '_cacache'),
    manifests: path.join(root, '_patches', 'manifests'),
    // With manifests in a bucket: this machine's part of them (restore journal, undo).
    machine: path.join(root, '_patches', 'machine'),
  }
}
