import { existsSync } from 'node:fs'
import { chmod, mkdir, mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import {
  type BackupStore,
  createPatchBackups,
  type ManifestRepository,
  type PatchBackups,
} from '@patch-backup/core'
import { createJsonManifestRepository, type JsonManifestRepository } from '@patch-backup/manifest'
import { type CacacheStore, createCacacheStore } from '@patch-backup/store-cacache'

/**
 * One scene on real disk: `<base>/store` is the backup root (`_cacache`, `_patches`),
 * `<base>/project` the cwd, `<base>/outside` a sentinel the service must never read or write.
 */
export interface Workspace {
  base: string
  root: string
  project: string
  outside: string
  cachePath: string
  manifestsDir: string
  dispose(): Promise<void>
}

export async function createWorkspace(name: string): Promise<Workspace> {
  const base = await realTemp(name)
  const ws: Workspace = {
    base,
    root: path.join(base, 'store'),
    project: path.join(base, 'project'),
    outside: path.join(base, 'outside'),
    cachePath: path.join(base, 'store', '_cacache'),
    manifestsDir: path.join(base, 'store', '_patches', 'manifests'),
    dispose: async () => {
      // A test may have left read-only directories behind.
      await chmodTree(base)
      await rm(base, { recursive: true, force: true })
    },
  }
  await mkdir(ws.project, { recursive: true })
  await mkdir(ws.outside, { recursive: true })
  return ws
}

/** A fresh temp dir under its real path (os.tmpdir() may itself be a symlink). */
export async function realTemp(name: string): Promise<string> {
  const { realpath } = await import('node:fs/promises')
  return mkdtemp(path.join(await realpath(os.tmpdir()), `pb-rel-${name}-`))
}

async function chmodTree(dir: string): Promise<void> {
  const { readdir, lstat } = await import('node:fs/promises')
  const info = await lstat(dir).catch(() => undefined)
  if (!info?.isDirectory()) return
  await chmod(dir, 0o755).catch(() => {})
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    await chmodTree(path.join(dir, name))
  }
}

export interface Stack {
  backups: PatchBackups
  store: CacacheStore
  manifests: JsonManifestRepository
}

export interface StackOptions {
  cwd?: string
  lockStaleMs?: number
  lockTimeoutMs?: number
  wrapStore?: (store: CacacheStore) => BackupStore
  wrapManifests?: (repo: JsonManifestRepository) => ManifestRepository
}

/** The real stack in this process: cacache + JSON manifests under `ws.root`. */
export function openStack(ws: Workspace, options: StackOptions = {}): Stack {
  const store = createCacacheStore({ path: ws.cachePath })
  const manifests = createJsonManifestRepository({
    dir: ws.manifestsDir,
    lockStaleMs: options.lockStaleMs,
    lockTimeoutMs: options.lockTimeoutMs,
  })
  const backups = createPatchBackups({
    store: options.wrapStore ? options.wrapStore(store) : store,
    manifests: options.wrapManifests ? options.wrapManifests(manifests) : manifests,
    projectRoot: options.cwd ?? ws.project,
  })
  return { backups, store, manifests }
}

/** The child fixtures import the built packages, as another process really would. */
export function assertBuilt(): void {
  for (const pkg of ['core', 'store-cacache', 'manifest', 'cli']) {
    const built = fileURLToPath(
      new URL(`../../../../packages/${pkg}/dist/index.js`, import.meta.url),
    )
    if (!existsSync(built)) {
      throw new Error(`${built} is missing: run \`pnpm build\` first.`)
    }
  }
}

/** Runs count, from the environment in a non-CI run, else the CI default. */
export function fromEnv(name: string, fallback: number): number {
  const value = Number(process.env[name])
  return Number.isFinite(value) && value > 0 ? value : fallback
}
