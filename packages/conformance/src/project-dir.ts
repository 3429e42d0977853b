import { mkdtemp, realpath, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

/** A throwaway project directory with real files, removed by `dispose`. */
export async function createProjectDir(
  prefix = 'pb-project-',
): Promise<{ dir: string; dispose: () => Promise<void> }> {
  const dir = await realpath(await mkdtemp(path.join(os.tmpdir(), prefix)))
  return { dir, dispose: () => rm(dir, { recursive: true, force: true }) }
}
