export { BACKUP_KEY_PREFIX, backupKey, patchKeyPrefix, snapshotKey } from './backup-key.js'
export {
  type CompressionAlgorithm,
  type CompressionOptions,
  isCompressionSupported,
  withCompression,
} from './compression.js'
export {
  ENCRYPTION_KEY_BYTES,
  type EncryptionOptions,
  keyId,
  withEncryption,
} from './encryption.js'
export {
  asStoreError,
  isPatchBackupError,
  PatchBackupError,
  type PatchBackupErrorCode,
  type PatchBackupErrorOptions,
} from './errors.js'
export { isInside, normalizeFileKey, type ProjectFile, resolveProjectFile } from './file-path.js'
export { type CurrentFile, classify, type FileState, hashCurrentFile } from './file-state.js'
export {
  HashingStream,
  integrityMismatch,
  integrityToHex,
  parseIntegrity,
  sha256Integrity,
  VerifyingStream,
} from './integrity.js'
export {
  createSalt,
  DEFAULT_SCRYPT,
  generateKey,
  KEY_ENV,
  type KeySource,
  keyFromEnv,
  keyFromFile,
  keyFromPassphrase,
  loadKey,
  type PassphraseOptions,
  readSaltFile,
  type SaltFile,
  type ScryptParams,
} from './key-source.js'
export { KeyedQueue } from './keyed-queue.js'
export type { Reservation, StorageLimits } from './limits.js'
export type { Maintenance } from './maintenance.js'
export {
  createMemoryManifestRepository,
  type MemoryManifestRepository,
} from './memory-manifests.js'
export { createMemoryStore, type MemoryStore } from './memory-store.js'
export {
  DEFAULT_SALT_FILE,
  type EncryptionConfig,
  PASSPHRASE_ENV,
  type ParsePolicyConfigOptions,
  POLICY_CONFIG_FILE,
  type PolicyConfig,
  parsePolicyConfig,
  type RetentionConfig,
} from './policy-config.js'
export { createMemoryPolicyState, type PolicyState } from './policy-state.js'
export { formatBytes, parseByteSize, parseDuration } from './policy-units.js'
export type {
  PrunedPatch,
  PruneIssue,
  PruneOptions,
  PruneReason,
  PruneResult,
} from './prune.js'
export type { LastRestore, RestoreJournal, Snapshot } from './restore-journal.js'
export type {
  FileStatus,
  RecoverResult,
  RestoreAllOptions,
  RestoreOptions,
} from './restore-transaction.js'
export {
  DEFAULT_RETENTION_INTERVAL_MS,
  RETENTION_STAMP,
  type RetentionPolicy,
} from './retention.js'
export {
  createPatchBackups,
  DEFAULT_CONCURRENCY,
  type PatchBackups,
  type PatchBackupsOptions,
} from './service.js'
export {
  type StoragePolicies,
  type StoragePoliciesFromConfigOptions,
  type StoragePolicyOptions,
  storagePoliciesFromConfig,
  withStoragePolicies,
} from './storage-policies.js'
export type { LayeredStore } from './store-layer.js'
export type * from './types.js'
export { isValidUuid, type PatchUuid, parseUuid } from './uuid.js'
