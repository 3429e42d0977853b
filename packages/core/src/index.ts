export { breathe } from './breathe.js'
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
} from './config/key-source.js'
export {
  DEFAULT_SALT_FILE,
  type EncryptionConfig,
  PASSPHRASE_ENV,
  type ParsePolicyConfigOptions,
  POLICY_CONFIG_FILE,
  type PolicyConfig,
  parsePolicyConfig,
  type RetentionConfig,
} from './config/policy-file.js'
export {
  type StoragePolicies,
  type StoragePoliciesFromConfigOptions,
  type StoragePolicyOptions,
  storagePoliciesFromConfig,
  withStoragePolicies,
} from './config/storage-policies.js'
export {
  asStoreError,
  isPatchBackupError,
  PatchBackupError,
  type PatchBackupErrorCode,
  type PatchBackupErrorOptions,
} from './errors.js'
export {
  createFilePaths,
  type FilePathOptions,
  type FilePaths,
  isInside,
  normalizeFileKey,
  type ProjectFile,
  resolveProjectFile,
} from './file-path.js'
export {
  HashingStream,
  integrityMismatch,
  integrityToHex,
  parseIntegrity,
  sha256Integrity,
  VerifyingStream,
  verifyBytes,
} from './integrity.js'
export { KeyedQueue } from './keyed-queue.js'
export {
  type CompressionAlgorithm,
  type CompressionOptions,
  isCompressionSupported,
  withCompression,
} from './layers/compression.js'
export {
  ENCRYPTION_KEY_BYTES,
  type EncryptionOptions,
  keyId,
  withEncryption,
} from './layers/encryption.js'
export type { LayeredStore } from './layers/layer.js'
export type { Maintenance } from './maintenance/maintenance.js'
export {
  createMemoryManifestRepository,
  type MemoryManifestRepository,
} from './memory/manifests.js'
export { createMemoryStore, type MemoryStore } from './memory/store.js'
export type { Reservation, StorageLimits } from './policies/limits.js'
export type {
  PrunedPatch,
  PruneIssue,
  PruneOptions,
  PruneReason,
  PruneResult,
} from './policies/prune.js'
export {
  DEFAULT_RETENTION_INTERVAL_MS,
  RETENTION_STAMP,
  type RetentionPolicy,
} from './policies/retention.js'
export { createMemoryPolicyState, type PolicyState } from './policies/state.js'
export { formatBytes, parseByteSize, parseDuration } from './policies/units.js'
export {
  type CurrentFile,
  classify,
  describeTarget,
  type FileState,
  hashCurrentFile,
  type RestoreAction,
  restoreStep,
  type TargetKind,
} from './restore/file-state.js'
export type { LastRestore, RestoreJournal, Snapshot } from './restore/journal.js'
export { isDeadProcess } from './restore/safe-target.js'
export type {
  FileStatus,
  RecoverResult,
  RestoreAllOptions,
  RestoreOptions,
} from './restore/transaction.js'
export {
  createPatchBackups,
  DEFAULT_CONCURRENCY,
  type PatchBackups,
  type PatchBackupsOptions,
} from './service/service.js'
export { BACKUP_KEY_PREFIX, backupKey, patchKeyPrefix, snapshotKey } from './store-keys/layout.js'
export type * from './types.js'
export { isValidUuid, type PatchUuid, parseUuid } from './uuid.js'
