export { BACKUP_KEY_PREFIX, backupKey, patchKeyPrefix } from './backup-key.js'
export {
  asStoreError,
  isPatchBackupError,
  PatchBackupError,
  type PatchBackupErrorCode,
  type PatchBackupErrorOptions,
} from './errors.js'
export { isInside, normalizeFileKey, type ProjectFile, resolveProjectFile } from './file-path.js'
export {
  HashingStream,
  integrityMismatch,
  integrityToHex,
  parseIntegrity,
  sha256Integrity,
  VerifyingStream,
} from './integrity.js'
export { KeyedQueue } from './keyed-queue.js'
export type { Maintenance } from './maintenance.js'
export {
  createMemoryManifestRepository,
  type MemoryManifestRepository,
} from './memory-manifests.js'
export { createMemoryStore, type MemoryStore } from './memory-store.js'
export {
  createPatchBackups,
  DEFAULT_CONCURRENCY,
  type PatchBackups,
  type PatchBackupsOptions,
} from './service.js'
export type * from './types.js'
export { isValidUuid, type PatchUuid, parseUuid } from './uuid.js'
