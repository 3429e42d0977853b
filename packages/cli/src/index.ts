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
export { type OpenedPatchBackups, type OpenOptions, openPatchBackups } from './open.js'
export { layout, type RootOptions, resolveRoot } from './root.js'
