import path from 'node:path'
import {
  type BackupStore,
  createPatchBackups,
  type PatchBackups,
  type PatchBackupsOptions,
} from '@patch-backup/core'
import { createJsonManifestRepository } from '@patch-backup/manifest'
import { createCacacheStore } from '@patch-backup/store-cacache'
import { layout, resolveRoot } from './root.js'

export interface OpenOptions extends Omit<PatchBackupsOptions, 'store' | 'manifests'> {
  /** Backup root; default `PATCH_BACKUP_DIR` or `~/.socket`. */
  dir?: string
  /**
   * The store for the bytes instead of cacache under `<root>/_cacache`, e.g. an S3 store from
   * `@patch-backup/store-s3` (the CLI's `--store`). Manifests stay under the root either way.
   */
  store?: BackupStore
  /**
   * Wraps the store (the default cacache one, or `store`) before the service gets it, e.g. to
   * count or trace bytes (the CLI's progress bar does). It must keep the `BackupStore` contract.
   */
  decorateStore?: (store: BackupStore) => BackupStore
}

export interface OpenedPatchBackups extends PatchBackups {
  /** The root this instance reads and writes. */
  readonly root: string
  /** The absolute project root relative file paths resolve against. */
  readonly cwd: string
  /** The store the service uses, for reading backed-up bytes directly (`status`, `diff`). */
  readonly store: BackupStore
}

/**
 * The service on the default adapters: cacache under `<root>/_cacache` (or `options.store`),
 * JSON under `<root>/_patches/manifests`.
 */
export function openPatchBackups(options: OpenOptions = {}): OpenedPatchBackups {
  const { dir, decorateStore, store: given, ...rest } = options
  const root = resolveRoot({ dir })
  const cwd = path.resolve(rest.cwd ?? process.cwd())
  const paths = layout(root)
  const base = given ?? createCacacheStore({ path: paths.cache })
  const store = decorateStore ? decorateStore(base) : base
  const service = createPatchBackups({
    ...rest,
    cwd,
    store,
    manifests: createJsonManifestRepository({ dir: paths.manifests }),
  })
  return Object.assign(service, { root, cwd, store })
}
