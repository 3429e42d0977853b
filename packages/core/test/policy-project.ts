import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {
  createMemoryManifestRepository,
  createMemoryStore,
  createPatchBackups,
  type MemoryManifestRepository,
  type MemoryStore,
  type PatchBackups,
  type PatchBackupsOptions,
} from '../src/index.js'

export const DAY = 24 * 60 * 60 * 1000

/** A temp project, memory adapters, and a clock the test moves. */
export interface PolicyProject {
  dir: string
  store: MemoryStore
  manifests: MemoryManifestRepository
  clock: { now: Date; advance(ms: number): void }
  open(extra?: Partial<PatchBackupsOptions>): PatchBackups
  write(file: string, content: string | Buffer): Promise<void>
  /** Store keys, sorted. */
  keys(): Promise<string[]>
  dispose(): Promise<void>
}

export async function createPolicyProject(): Promise<PolicyProject> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pb-policy-'))
  const store = createMemoryStore()
  const manifests = createMemoryManifestRepository()
  const clock = {
    now: new Date('2025-01-01T00:00:00.000Z'),
    advance(ms: number) {
      clock.now = new Date(clock.now.getTime() + ms)
    },
  }
  return {
    dir,
    store,
    manifests,
    clock,
    open: (extra = {}) =>
      createPatchBackups({ store, manifests, cwd: dir, now: () => clock.now, ...extra }),
    async write(file, content) {
      await mkdir(path.dirname(path.join(dir, file)), { recursive: true })
      await writeFile(path.join(dir, file), content)
    },
    async keys() {
      const found: string[] = []
      for await (const key of store.keys?.('') ?? []) found.push(key)
      return found.sort()
    },
    dispose: () => rm(dir, { recursive: true, force: true }),
  }
}

/** `n` bytes of content unique to `tag`. */
export function content(tag: string, n: number): string {
  return `${tag}:`.padEnd(n, tag.slice(-1))
}
