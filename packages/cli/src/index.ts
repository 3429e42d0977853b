export {
  cleanupBackups,
  createBackup,
  createBackups,
  getBackupInfo,
  getPatchMetadata,
  hasBackup,
  listAllPatches,
  listBackups,
  restoreAllBackups,
  restoreBackup,
} from './default-api.js'
export {
  type OpenedPatchBackups,
  type OpenedWithPolicies,
  type OpenOptions,
  openPatchBackups,
  openPatchBackupsAsync,
  type PolicyOpenOptions,
  type PolicySummary,
} from './open.js'
export { layout, type RootOptions, resolveRoot } from './root.js'
