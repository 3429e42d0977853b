import { createPatchBackups, type PatchBackups, type PatchBackupsOptions } from '@patch-backup/core'
import { createJsonManifestRepository } from '@patch-backup/manifest'
import { createCacacheStore } from '@patch-backup/store-cacache'
import { layout, resolveRoot } from './root.js'

export interface OpenOptions extends Omit<PatchBackupsOptions, 'store' | 'manifests'> {
  /** Backup root; default `PATCH_BACKUP_DIR` or `~/.socket`. */
  dir?: string
}

export interface OpenedPatchBackups extends PatchBackups {
  /** The root this instance reads and writes. */
  readonly root: string
}

/** The service on the default adapters: cacache under `<root>/_cacache`, JSON under `<root>/_patches/manifests`. */
export function openPatchBackups(options: OpenOptions = {}): OpenedPatchBackups {
  const { dir, ...rest } = options
  const root = resolveRoot({ dir })
  const paths = layout(root)
  const service = createPatchBackups({
    ...rest,
    store: createCacacheStore({ path: paths.cache }),
    manifests: createJsonManifestRepository({ dir: paths.manifests }),
  })
  return Object.assign(service, { root })
}
