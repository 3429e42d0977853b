import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { PatchBackupError, type PolicyState } from '@patch-backup/core'
import { loadLockfile } from './lock.js'

export interface FilePolicyStateOptions {
  /**
   * Where the stamps live, e.g. `<root>/_patches/state`. Keep it apart from the manifests
   * directory. Created on the first write.
   */
  dir: string
  /**
   * A run's lock whose holder stopped refreshing it (killed, crashed) for this long is taken over.
   * Default 10000 ms (proper-lockfile's minimum is 2000 ms); it is refreshed every half of it.
   */
  lockStaleMs?: number
}

export interface FilePolicyState extends PolicyState {
  readonly dir: string
  /** `<dir>/<name>.stamp`: `{ "at": "<ISO date>" }`. */
  stampPath(name: string): string
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/

function checkName(name: string): string {
  if (typeof name !== 'string' || !NAME.test(name)) {
    throw new PatchBackupError(
      'INVALID_OPTIONS',
      `A policy stamp name must match ${NAME}, got ${JSON.stringify(name)}.`,
    )
  }
  return name
}

const code = (error: unknown) => (error as NodeJS.ErrnoException | undefined)?.code

/**
 * A `PolicyState` in files, shared by every process using the same backups: one small stamp
 * file per policy, replaced whole (temp + rename), and a proper-lockfile lock per run, taken
 * without waiting. Pass it as `createPatchBackups({ retention: { state } })`.
 */
export function createFilePolicyState(options: FilePolicyStateOptions): FilePolicyState {
  if (typeof options?.dir !== 'string' || options.dir === '') {
    throw new PatchBackupError('INVALID_OPTIONS', 'createFilePolicyState needs a `dir`.')
  }
  const dir = resolve(options.dir)
  const staleMs = Math.max(options.lockStaleMs ?? 10_000, 2_000)
  const stampPath = (name: string) => join(dir, `${checkName(name)}.stamp`)

  return {
    dir,
    stampPath,

    async readStamp(name) {
      const file = stampPath(name)
      let text: string
      try {
        text = await readFile(file, 'utf8')
      } catch (error) {
        if (code(error) === 'ENOENT') return undefined
        throw new PatchBackupError(
          'STORE_ERROR',
          `Cannot read the policy stamp ${file}: ${(error as Error).message}.`,
          { cause: error, path: file },
        )
      }
      try {
        const at = new Date((JSON.parse(text) as { at?: unknown }).at as string)
        if (!Number.isNaN(at.getTime())) return at
      } catch {
        // fall through: a damaged stamp counts as never run
      }
      return undefined
    },

    async writeStamp(name, at) {
      const file = stampPath(name)
      const temp = `${file}.${process.pid}.${Math.random().toString(36).slice(2, 10)}.tmp`
      try {
        await mkdir(dir, { recursive: true })
        await writeFile(temp, `${JSON.stringify({ at: at.toISOString() })}\n`, { flag: 'wx' })
        await rename(temp, file)
      } catch (error) {
        await rm(temp, { force: true }).catch(() => {})
        throw new PatchBackupError(
          'STORE_ERROR',
          `Cannot write the policy stamp ${file}: ${(error as Error).message}. Check that the directory is writable.`,
          { cause: error, path: file },
        )
      }
    },

    async tryLock(name) {
      const target = stampPath(name)
      const lock = () =>
        loadLockfile().then((lockfile) =>
          lockfile.lock(target, {
            lockfilePath: `${target}.lock`,
            realpath: false,
            stale: staleMs,
            retries: 0,
            // The default throws from a timer; a lost lock only means another run may start.
            onCompromised: () => {},
          }),
        )
      try {
        return await lock()
      } catch (error) {
        if (code(error) === 'ELOCKED') return undefined
        if (code(error) !== 'ENOENT') throw error
      }
      await mkdir(dir, { recursive: true })
      try {
        return await lock()
      } catch (error) {
        if (code(error) === 'ELOCKED') return undefined
        throw error
      }
    },
  }
}
