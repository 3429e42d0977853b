import type { PatchBackups } from '@patch-backup/core'
import { type OpenedPatchBackups, openPatchBackups } from './open.js'
import { resolveRoot } from './root.js'

// The seed's module-level functions. Root and cwd are read at each call, so a changed
// PATCH_BACKUP_DIR, HOME or process.cwd() applies at once; the service for each (root, cwd)
// is kept so concurrent calls share one per-patch queue.
const services = new Map<string, OpenedPatchBackups>()

function current(): OpenedPatchBackups {
  const root = resolveRoot()
  const cwd = process.cwd()
  const id = `${root}\0${cwd}`
  let service = services.get(id)
  if (!service) {
    service = openPatchBackups({ dir: root, cwd })
    services.set(id, service)
  }
  return service
}

function bound<K extends keyof PatchBackups>(name: K): PatchBackups[K] {
  // async: a bad root (NO_HOME, …) rejects the returned promise, like every other failure,
  // instead of throwing before there is a promise for `.catch()` to see.
  return (async (...args: unknown[]) =>
    (current()[name] as (...a: unknown[]) => unknown)(...args)) as PatchBackups[K]
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
