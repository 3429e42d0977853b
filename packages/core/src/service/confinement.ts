// What confinement means on disk. A file inside a confining project root is read and written only
// through directories that stay inside it (a symlink out is refused); any other file is taken as
// the file system gives it, as the seed did. It must not decide which paths are confined
// (file-path.ts does) nor write files (restore/ does).

import { mkdirSync } from 'node:fs'
import path from 'node:path'
import type { FilePaths, ProjectFile } from '../file-path.js'
import {
  assertDirectoryInsideNow,
  assertSourceInside,
  ensureParentInside,
} from '../restore/safe-target.js'

export interface Confinement {
  /** Creates the missing parent directories of `file`; inside a project, never through a symlink out. */
  ensureParent(file: ProjectFile): Promise<void>
  /** Refuses a confined source whose real location (after symlinks) is outside the project. */
  checkSource(file: ProjectFile): Promise<void>
  /**
   * Refuses a confined file whose directory resolves outside the project now (`INVALID_PATH`);
   * `false` when the directory is gone. Unconfined files pass: the caller named them.
   */
  checkNow(file: ProjectFile): Promise<boolean>
}

export function createConfinement(paths: FilePaths): Confinement {
  const root = paths.projectRoot
  let realRootPromise: Promise<string> | undefined
  const realRoot = (of: string) => {
    realRootPromise ??= import('node:fs/promises').then((fs) => fs.realpath(of)).catch(() => of)
    return realRootPromise
  }
  return {
    async ensureParent(file) {
      if (root === undefined || !file.confined) {
        // Synchronous: one mkdir that finds the directory there, without a thread-pool round trip.
        mkdirSync(path.dirname(file.absolute), { recursive: true })
        return
      }
      await ensureParentInside(root, await realRoot(root), file.absolute)
    },
    async checkSource(file) {
      if (root === undefined || !file.confined) return
      await assertSourceInside(await realRoot(root), file.absolute)
    },
    async checkNow(file) {
      if (root === undefined || !file.confined) return true
      return assertDirectoryInsideNow(await realRoot(root), file.absolute)
    },
  }
}
