import { type BackupStore, type ManifestRepository, PatchBackupError } from '@patch-backup/core'
import { heldSnapshots } from './bucket-manifests.js'

/** `--store` / `PATCH_BACKUP_STORE` does not name a store this CLI can open: exit 2. */
export class StoreUrlError extends Error {
  override readonly name = 'StoreUrlError'
}

export interface RemoteStore {
  store: BackupStore
  /** The manifests in the same bucket and prefix: what every machine with the URL shares. */
  manifests: ManifestRepository
  /** Lets go of the client's sockets, so the process can end as soon as the command is done. */
  close(): void
}

/** The package that `--store s3://…` needs; an optional peer dependency of the CLI. */
export const S3_PACKAGE = '@patch-backup/store-s3'

type StoreS3 = typeof import('@patch-backup/store-s3')

function isNotFound(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException)?.code
  return code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND'
}

async function loadStoreS3(): Promise<StoreS3> {
  // The SDK warns once per process on Node < 22 about its releases after January 2027; this
  // package pins one that runs on Node 20, so for a CLI user the warning is only noise.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true'
  try {
    return await import('@patch-backup/store-s3')
  } catch (error) {
    // Only when the package itself is missing: one of its own dependencies missing is a broken
    // install, and its message should stay as it is.
    const message = String((error as Error)?.message)
    if (!isNotFound(error) || !message.includes(`'${S3_PACKAGE}'`)) throw error
    throw new PatchBackupError(
      'STORE_UNAVAILABLE',
      `--store s3://… needs ${S3_PACKAGE}, which is not installed next to @patch-backup/cli. Install it where the CLI is: 'npm install --global ${S3_PACKAGE}' for a global CLI, or 'npm install ${S3_PACKAGE}' in the project.`,
      { cause: error },
    )
  }
}

function checkScheme(url: string, source: string): void {
  if (!/^s3:\/\//i.test(url)) {
    throw new StoreUrlError(
      `${source}: ${JSON.stringify(url)} is not a store URL: only s3://<bucket>/<prefix> is supported (for a local store, use --dir)`,
    )
  }
}

/**
 * Opens the store a `--store` URL names (`s3://bucket/prefix[?endpoint=…&region=…]`), loading
 * `@patch-backup/store-s3` and the AWS SDK only now. A URL that is not one throws `StoreUrlError`
 * (before anything is loaded when the scheme is wrong); credentials come from the environment.
 */
export async function openRemoteStore(url: string, source: string): Promise<RemoteStore> {
  checkScheme(url, source)
  const { createS3ClientFromEnv, openS3Repository, parseS3Url } = await loadStoreS3()
  let location: ReturnType<StoreS3['parseS3Url']>
  try {
    location = parseS3Url(url)
  } catch (error) {
    if (error instanceof PatchBackupError && error.code === 'INVALID_OPTIONS')
      throw new StoreUrlError(`${source}: ${error.message}`)
    throw error
  }
  const { bucket, prefix, ...client } = location
  const { store, manifests } = openS3Repository({
    client: createS3ClientFromEnv(client),
    bucket,
    prefix,
  })
  return {
    store: keepingHeldSnapshots(store, manifests),
    manifests,
    close: () => store.client.destroy(),
  }
}

/** An undo snapshot key, `socket:patch:backup:<uuid>:snapshot-…` (core's snapshotKey). */
const SNAPSHOT_KEY = /^socket:patch:backup:([^:]+):snapshot-/

/**
 * The store as gc sees it, without the snapshot keys that some machine's restore journal or undo
 * names. Those live on that machine (bucket-manifests.ts), so gc here would take the keys for
 * orphans; each machine records them in the bucket manifest (`machineSnapshots`), and they are
 * left out here. Every other snapshot key is gc's like any key: one no manifest names, once past
 * the grace (the store's `orphanGraceMs` and core's `isYoungSnapshot`, an hour each, so a restore
 * still running keeps its snapshots).
 */
function keepingHeldSnapshots<S extends BackupStore>(store: S, manifests: ManifestRepository): S {
  const keys = store.keys?.bind(store)
  if (!keys) return store
  return {
    ...store,
    async *keys(prefix: string) {
      // Per listing: each patch's manifest read once, and afresh for the next gc.
      const held = new Map<string, Promise<Set<string> | undefined>>()
      const heldOf = (uuid: string) => {
        let known = held.get(uuid)
        if (!known) {
          // A manifest that cannot be read may name any of its keys: keep them all.
          known = manifests.get(uuid).then(heldSnapshots, () => undefined)
          held.set(uuid, known)
        }
        return known
      }
      for await (const key of keys(prefix)) {
        const uuid = SNAPSHOT_KEY.exec(key)?.[1]
        if (uuid === undefined) yield key
        else if ((await heldOf(uuid))?.has(key) === false) yield key
      }
    },
  }
}
