import path from 'node:path'
import {
  type BackupStore,
  createFilePaths,
  createPatchBackups,
  type EncryptionConfig,
  type FilePaths,
  keyId,
  loadKey,
  type ManifestRepository,
  PatchBackupError,
  type PatchBackups,
  type PatchBackupsOptions,
  POLICY_CONFIG_FILE,
  type PolicyConfig,
  type RetentionConfig,
  type StorageLimits,
  storagePoliciesFromConfig,
  withStoragePolicies,
} from '@patch-backup/core'
import {
  createFilePolicyState,
  createJsonManifestRepository,
  loadPolicyConfig,
} from '@patch-backup/manifest'
import { type BucketManifestsOptions, bucketManifests, machineIdAt } from './bucket-manifests.js'
import { lazyStore } from './lazy-store.js'
import { layout, resolveRoot } from './root.js'

export interface OpenOptions extends Omit<PatchBackupsOptions, 'store' | 'manifests'> {
  /** Backup root; default `PATCH_BACKUP_DIR` or `~/.socket`. */
  dir?: string
  /**
   * The store for the bytes instead of cacache under `<root>/_cacache`, e.g. an S3 store from
   * `@patch-backup/store-s3` (the CLI's `--store`). Manifests stay under the root unless
   * `sharedManifests` is given too.
   */
  store?: BackupStore
  /**
   * Manifests shared through the store's bucket (the CLI's `--store s3://…`), instead of the JSON
   * ones under `<root>/_patches/manifests`. This machine's part of them (a restore's crash journal
   * and undo) stays under the root, and manifests an older CLI left there stay readable until
   * moved: see `bucketManifests`.
   */
  sharedManifests?: ManifestRepository
  /**
   * Wraps the store (the default cacache one, or `store`) before the service gets it, e.g. to
   * count or trace bytes (the CLI's progress bar does). It must keep the `BackupStore` contract.
   * It sees the store after the storage policies: the bytes it counts are the original ones.
   */
  decorateStore?: (store: BackupStore) => BackupStore
}

/** How `openPatchBackupsAsync` applies `<root>/patch-backup.config.json`. */
export interface PolicyOpenOptions {
  /** Where keys and passphrases are read from; default `process.env`. */
  env?: NodeJS.ProcessEnv
  /** About to write backups: a passphrase-keyed root gets its salt file if it has none. */
  forWriting?: boolean
  /** Take the encryption key from this file for this run (turns encryption on if the config has none). */
  keyFile?: string
  /** `false`: no automatic retention for this run, whatever the config says. Default `true`. */
  autoPrune?: boolean
  /**
   * `false` for work that reads no stored bytes (list, info, prune, …): a key that cannot be loaded
   * is then not an error, and the store is opened without encryption. Default `true`.
   */
  needsKey?: boolean
  /** Also load the key just to report its id in `policy.encryption.keyId` (`info` does). */
  describeKey?: boolean
}

/** The storage policy a run works under, for people and scripts (`info` prints it). */
export interface PolicySummary {
  /** The config file in force, or `null` when the root has none. */
  config: string | null
  compression: { algorithm: string; level?: number } | null
  encryption: { keySource: string; keyId?: string; keyError?: string } | null
  limits: StorageLimits | null
  /** Automatic retention rules (ms and bytes), `null` when none or with `--no-auto-prune`. */
  retention: RetentionConfig | null
}

export interface OpenedPatchBackups extends PatchBackups {
  /** The root this instance reads and writes. */
  readonly root: string
  /**
   * Where the CLI resolves file arguments: `cwd`, else `projectRoot`, else `process.cwd()` when
   * opened. (The service itself resolves relative paths against `projectRoot`, or against `cwd`
   * or the current `process.cwd()` at each call.)
   */
  readonly cwd: string
  /** How the service turns paths and manifest keys into files (its project root, if any). */
  readonly paths: FilePaths
  /** The store the service uses, for reading backed-up bytes directly (`status`, `diff`). */
  readonly store: BackupStore
  /** With `sharedManifests`: the repositories the service's manifests are composed of. */
  readonly manifestParts?: BucketManifestsOptions
}

export interface OpenedWithPolicies extends OpenedPatchBackups {
  /** What `<root>/patch-backup.config.json` (and the run's options) put in force. */
  readonly policy: PolicySummary
}

function assemble(
  options: OpenOptions,
  wrap: (store: BackupStore) => BackupStore,
): OpenedPatchBackups {
  const { dir, decorateStore, store: given, sharedManifests, ...rest } = options
  const root = resolveRoot({ dir })
  const cwd = path.resolve(rest.cwd ?? rest.projectRoot ?? process.cwd())
  const paths = layout(root)
  // cacache is loaded at the store's first call: list, info and status never make one.
  const cacache =
    given ??
    lazyStore(
      () =>
        import('@patch-backup/store-cacache').then((m) =>
          m.createCacacheStore({ path: paths.cache }),
        ),
      { verifiesReads: true },
    )
  const base = wrap(cacache)
  const store = decorateStore ? decorateStore(base) : base
  // No cwd fixed here: without one, relative paths follow process.cwd() at each call, as the seed's did.
  let machineId: Promise<string> | undefined
  const manifestParts: BucketManifestsOptions | undefined = sharedManifests && {
    shared: sharedManifests,
    machine: createJsonManifestRepository({ dir: paths.machine }),
    legacy: createJsonManifestRepository({ dir: paths.manifests }),
    // Read (or made) at the first update that needs it, once per run.
    machineId: () => {
      machineId ??= machineIdAt(path.join(root, '_patches', 'machine-id'))
      return machineId
    },
  }
  const service = createPatchBackups({
    ...rest,
    store,
    manifests: manifestParts
      ? bucketManifests(manifestParts)
      : createJsonManifestRepository({ dir: paths.manifests }),
  })
  return Object.assign(service, { root, cwd, store, paths: createFilePaths(rest), manifestParts })
}

/**
 * The service on the default adapters: cacache under `<root>/_cacache` (or `options.store`),
 * JSON under `<root>/_patches/manifests`.
 *
 * Synchronous, so it does not read `<root>/patch-backup.config.json`: no limits, retention,
 * compression or encryption beyond what `options` passes. The store is still read through
 * `withStoragePolicies(store, {})`, so backups compressed under a config stay readable (encrypted
 * ones need the key: use `openPatchBackupsAsync`, which applies the config).
 */
export function openPatchBackups(options: OpenOptions = {}): OpenedPatchBackups {
  return assemble(options, (store) => withStoragePolicies(store, {}))
}

/**
 * Like `openPatchBackups`, after reading `<root>/patch-backup.config.json` (`INVALID_CONFIG` when it
 * is malformed): its compression and encryption wrap the store, its `limits` and `retention` go to
 * the service (explicit `options.limits` / `options.retention` win). Automatic retention shares its
 * stamp across processes in `<root>/_patches/state`.
 */
export async function openPatchBackupsAsync(
  options: OpenOptions & { policies?: PolicyOpenOptions } = {},
): Promise<OpenedWithPolicies> {
  const { policies: how = {}, ...open } = options
  const root = resolveRoot({ dir: open.dir })
  const env = how.env ?? process.env
  const loaded = (await loadPolicyConfig(root)) ?? undefined
  const config: PolicyConfig = { ...(loaded ?? {}) }
  if (how.keyFile !== undefined) {
    const encryption: EncryptionConfig = {
      keySource: 'file',
      keyFile: path.resolve(how.keyFile),
    }
    if (config.encryption?.allowPlaintext) encryption.allowPlaintext = true
    config.encryption = encryption
  }
  if (how.autoPrune === false) delete config.retention

  const state = createFilePolicyState({ dir: path.join(root, '_patches', 'state') })
  const build = (c: PolicyConfig) =>
    storagePoliciesFromConfig(c, { state, forWriting: how.forWriting, env })
  let policies: Awaited<ReturnType<typeof storagePoliciesFromConfig>>
  try {
    policies = await build(config)
  } catch (error) {
    const keyProblem = error instanceof PatchBackupError && error.code === 'INVALID_KEY'
    if (!keyProblem || how.needsKey !== false) throw error
    const { encryption: _unused, ...withoutKey } = config
    policies = await build(withoutKey)
  }

  const summary: PolicySummary = {
    config: loaded ? path.join(root, POLICY_CONFIG_FILE) : null,
    compression: config.compression ?? null,
    encryption: config.encryption ? { keySource: config.encryption.keySource } : null,
    limits: policies.limits ?? null,
    retention: config.retention ?? null,
  }
  if (config.encryption && summary.encryption && how.describeKey) {
    try {
      summary.encryption.keyId = keyId(await loadKey(config.encryption, { env }))
    } catch (error) {
      summary.encryption.keyError = error instanceof Error ? error.message : String(error)
    }
  }

  const service = assemble(
    {
      ...open,
      limits: open.limits ?? policies.limits,
      retention: open.retention ?? policies.retention,
    },
    policies.decorateStore,
  )
  return Object.assign(service, { policy: summary })
}
