import type { PatchBackups } from '@patch-backup/core'
import { type OpenedPatchBackups, openPatchBackupsAsync } from './open.js'
import { resolveRoot } from './root.js'

// The seed's module-level functions. The backup root is read at each call, so a changed
// PATCH_BACKUP_DIR or HOME applies at once; paths are the seed's too: an absolute path is taken as
// it is, a relative one resolves against process.cwd() at the call. The service for each root is
// kept so concurrent calls share one per-patch queue. Each applies the root's
// patch-backup.config.json (read when its service is first made).
const services = new Map<string, Promise<OpenedPatchBackups>>()

function current(): Promise<OpenedPatchBackups> {
  const root = resolveRoot()
  let service = services.get(root)
  if (!service) {
    service = openPatchBackupsAsync({ dir: root, policies: { forWriting: true } })
    // A config or key that fails is tried again at the next call, not remembered.
    service.catch(() => services.delete(root))
    services.set(root, service)
  }
  return service
}

function bound<K extends keyof PatchBackups>(name: K): PatchBackups[K] {
  // async: a bad root (NO_HOME, …) rejects the returned promise, like every other failure,
  // instead of throwing before there is a promise for `.catch()` to see.
  return (async (...args: unknown[]) =>
    ((await current())[name] as (...a: unknown[]) => unknown)(...args)) as PatchBackups[K]
}

export const createBackup = bound('createBackup')
export const createBackups = bound('createBackups')
export const restoreBackup = bound('restoreBackup')
export const restoreAllBackups = bound('restoreAllBackups')
export const listBackups = bound('listBackups')
export const getBackupInfo = bound('getBackupInfo')
export const getPatchMetadata = bound('getPatchMetadata')
export const hasBackup = bound('hasBackup')
export const listAllPatches = bound('listAllPatches')
export const cleanupBackups = bound('cleanupBackups')
