import { type CompressionOptions, withCompression } from '../layers/compression.js'
import { type EncryptionOptions, withEncryption } from '../layers/encryption.js'
import type { StorageLimits } from '../policies/limits.js'
import type { RetentionPolicy } from '../policies/retention.js'
import type { PolicyState } from '../policies/state.js'
import type { BackupStore } from '../types.js'
import { loadKey } from './key-source.js'
import type { PolicyConfig } from './policy-file.js'

export interface StoragePolicyOptions {
  /** Compress before storing; `false` or absent stores bytes as they are (still reading compressed ones). */
  compression?: CompressionOptions | false
  /** Encrypt before storing. */
  encryption?: EncryptionOptions
}

/**
 * Stacks the decorators in the one order that works: compress, then encrypt, then store. Without
 * compression it still wraps with `withCompression({ algorithm: 'none' })` (when the store can open
 * by key), so bytes compressed while compression was on stay readable after it is turned off.
 */
export function withStoragePolicies(
  store: BackupStore,
  options: StoragePolicyOptions = {},
): BackupStore {
  const encrypted = options.encryption ? withEncryption(store, options.encryption) : store
  const compression = options.compression || { algorithm: 'none' as const }
  if (compression.algorithm === 'none' && !options.encryption && !store.openKey) return store
  return withCompression(encrypted, compression)
}

/** What a `PolicyConfig` turns into: the store wrapper and the service options. */
export interface StoragePolicies {
  decorateStore(store: BackupStore): BackupStore
  limits?: StorageLimits
  retention?: RetentionPolicy
}

export interface StoragePoliciesFromConfigOptions {
  env?: NodeJS.ProcessEnv
  /** Shares automatic retention's stamp across processes (`createFilePolicyState`). */
  state?: PolicyState
  /** About to write backups: with a passphrase, create the salt file if it is missing. */
  forWriting?: boolean
}

/**
 * Loads the key a config names (if any) and builds the store wrapper, `limits` and `retention` to
 * hand to `createPatchBackups` (or `openPatchBackups({ decorateStore, limits, retention })`).
 */
export async function storagePoliciesFromConfig(
  config: PolicyConfig,
  options: StoragePoliciesFromConfigOptions = {},
): Promise<StoragePolicies> {
  const key = config.encryption
    ? await loadKey(config.encryption, { env: options.env, create: options.forWriting })
    : undefined
  const encryption: EncryptionOptions | undefined = key && {
    key,
    allowPlaintext: !!config.encryption?.allowPlaintext,
  }
  const policies: StoragePolicies = {
    decorateStore: (store) =>
      withStoragePolicies(store, { compression: config.compression ?? false, encryption }),
  }
  if (config.limits) policies.limits = { ...config.limits }
  if (config.retention) {
    const { intervalMs, ...rules } = config.retention
    policies.retention = { ...rules }
    if (intervalMs !== undefined) policies.retention.intervalMs = intervalMs
    if (options.state) policies.retention.state = options.state
  }
  return policies
}
