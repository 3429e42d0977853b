import { constants } from 'node:fs'
import { open } from 'node:fs/promises'
import path from 'node:path'
import pMap from 'p-map'
import { backupKey } from './backup-key.js'
import { asStoreError, PatchBackupError } from './errors.js'
import { type ProjectFile, resolveProjectFile } from './file-path.js'
import { VerifyingStream } from './integrity.js'
import { KeyedQueue } from './keyed-queue.js'
import { createMaintenance, type Maintenance } from './maintenance.js'
import { assertSourceInside, ensureParentInside, writeAtomically } from './safe-target.js'
import type {
  BackupInfo,
  BackupStore,
  CreateBackupOptions,
  CreateBackupsResult,
  FileError,
  ManifestRepository,
  PatchManifest,
  RestoreAllResult,
} from './types.js'
import { type PatchUuid, parseUuid } from './uuid.js'

export interface PatchBackupsOptions {
  store: BackupStore
  manifests: ManifestRepository
  /** Project root: relative paths resolve against it and no file outside it is touched. */
  cwd?: string
  now?: () => Date
  /** Files read or written at once by batch calls. Default 8. */
  concurrency?: number
}

export interface PatchBackups extends Maintenance {
  createBackup(uuid: string, filePath: string, options?: CreateBackupOptions): Promise<BackupInfo>
  createBackups(
    uuid: string,
    filePaths: readonly string[],
    options?: CreateBackupOptions,
  ): Promise<CreateBackupsResult>
  restoreBackup(uuid: string, filePath: string): Promise<boolean>
  restoreAllBackups(uuid: string): Promise<RestoreAllResult>
  listBackups(uuid: string): Promise<string[] | undefined>
  getBackupInfo(uuid: string, filePath: string): Promise<BackupInfo | undefined>
  getPatchMetadata(uuid: string): Promise<PatchManifest | undefined>
  hasBackup(uuid: string, filePath: string): Promise<boolean>
  listAllPatches(): Promise<string[]>
  cleanupBackups(uuid: string): Promise<boolean>
}

export const DEFAULT_CONCURRENCY = 8

function toFileError(filePath: string, error: unknown): FileError {
  if (error instanceof PatchBackupError)
    return { path: filePath, code: error.code, message: error.message }
  const message = error instanceof Error ? error.message : String(error)
  return { path: filePath, code: 'UNEXPECTED', message }
}

function unreadable(file: ProjectFile, error: unknown): PatchBackupError {
  const reason =
    (error as NodeJS.ErrnoException)?.code ??
    (error instanceof Error ? error.message : String(error))
  return new PatchBackupError(
    'SOURCE_UNREADABLE',
    `Cannot read ${file.absolute} to back it up (${reason}). Check that it exists, is a regular file and is readable.`,
    { cause: error, path: file.key },
  )
}

function unwritable(file: ProjectFile, error: unknown): PatchBackupError {
  if (error instanceof PatchBackupError) return error
  const reason =
    (error as NodeJS.ErrnoException)?.code ??
    (error instanceof Error ? error.message : String(error))
  return new PatchBackupError(
    'TARGET_UNWRITABLE',
    `Cannot write ${file.absolute} (${reason}). Check the permissions of its directory; the file was left as it was.`,
    { cause: error, path: file.key },
  )
}

export function createPatchBackups(options: PatchBackupsOptions): PatchBackups {
  const { store, manifests } = options
  const root = path.resolve(options.cwd ?? process.cwd())
  const now = options.now ?? (() => new Date())
  const concurrency = Math.max(1, options.concurrency ?? DEFAULT_CONCURRENCY)
  if (!store || !manifests) {
    throw new PatchBackupError(
      'INVALID_OPTIONS',
      'createPatchBackups needs both a store and a manifests repository.',
    )
  }
  // Mutations of one patch run one at a time in this process; the repository locks across processes.
  const patchQueue = new KeyedQueue()
  let realRootPromise: Promise<string> | undefined
  const realRoot = () => {
    realRootPromise ??= import('node:fs/promises').then((fs) => fs.realpath(root)).catch(() => root)
    return realRootPromise
  }

  /** Reads the file into the store and describes it; writes nothing to the manifest. */
  async function storeFile(uuid: PatchUuid, file: ProjectFile): Promise<BackupInfo> {
    let handle: Awaited<ReturnType<typeof open>>
    let mode: number
    try {
      await assertSourceInside(await realRoot(), file.absolute)
      handle = await open(file.absolute, constants.O_RDONLY)
    } catch (error) {
      if (error instanceof PatchBackupError) throw error
      throw unreadable(file, error)
    }
    try {
      const info = await handle.stat()
      if (!info.isFile()) throw unreadable(file, new Error('not a regular file'))
      mode = info.mode & 0o7777
      let readError: unknown
      const source = handle.createReadStream({ autoClose: false })
      source.on('error', (error) => {
        readError = error
      })
      let stored: { integrity: string; size: number }
      try {
        stored = await store.put(backupKey(uuid, file.key), source)
      } catch (error) {
        if (readError !== undefined) throw unreadable(file, readError)
        throw asStoreError(error, `store ${file.key}`)
      }
      return {
        integrity: stored.integrity,
        size: stored.size,
        backedUpAt: now().toISOString(),
        originalPath: file.key,
        mode,
      }
    } finally {
      await handle.close()
    }
  }

  function withEntries(
    uuid: PatchUuid,
    current: PatchManifest | undefined,
    entries: BackupInfo[],
    overwrite: boolean,
  ) {
    const base: PatchManifest = current ?? { uuid, patchedAt: now().toISOString(), files: {} }
    const files = { ...base.files }
    let changed = current === undefined
    for (const entry of entries) {
      if (!overwrite && files[entry.originalPath]) continue
      files[entry.originalPath] = entry
      changed = true
    }
    return changed ? { ...base, files } : base
  }

  async function readManifest(uuid: PatchUuid): Promise<PatchManifest | undefined> {
    return manifests.get(uuid)
  }

  async function restoreFile(uuid: PatchUuid, file: ProjectFile, entry: BackupInfo): Promise<void> {
    try {
      await ensureParentInside(root, await realRoot(), file.absolute)
    } catch (error) {
      throw unwritable(file, error)
    }
    let stream: Awaited<ReturnType<BackupStore['open']>>
    try {
      stream = await store.open(backupKey(uuid, file.key), entry.integrity)
    } catch (error) {
      throw asStoreError(error, `read the backup of ${file.key}`)
    }
    if (!stream) {
      throw new PatchBackupError(
        'BLOB_MISSING',
        `The stored bytes of ${file.key} (${entry.integrity}) are gone from the store. The file was left as it was; run 'patch-backup verify' to check the rest.`,
        { path: file.key },
      )
    }
    try {
      await writeAtomically(file.absolute, stream, entry.mode, [
        new VerifyingStream(entry.integrity, entry.size),
      ])
    } catch (error) {
      stream.destroy()
      if (error instanceof PatchBackupError) throw error
      throw unwritable(file, error)
    }
  }

  const service: PatchBackups = {
    ...createMaintenance({ store, manifests, concurrency }),

    async createBackup(uuid, filePath, opts = {}) {
      const id = parseUuid(uuid)
      const file = resolveProjectFile(root, filePath)
      return patchQueue.run(id, async () => {
        if (!opts.overwrite) {
          const existing = (await readManifest(id))?.files[file.key]
          if (existing) return existing
        }
        const entry = await storeFile(id, file)
        const next = await manifests.update(id, (current) =>
          withEntries(id, current, [entry], !!opts.overwrite),
        )
        return next?.files[file.key] ?? entry
      })
    },

    async createBackups(uuid, filePaths, opts = {}) {
      const id = parseUuid(uuid)
      const errors: FileError[] = []
      const files: ProjectFile[] = []
      for (const filePath of filePaths) {
        try {
          files.push(resolveProjectFile(root, filePath))
        } catch (error) {
          errors.push(toFileError(String(filePath), error))
        }
      }
      return patchQueue.run(id, async () => {
        const existing = opts.overwrite ? undefined : (await readManifest(id))?.files
        const unique = [...new Map(files.map((f) => [f.key, f])).values()]
        const stored = await pMap(
          unique,
          async (file) => {
            const kept = existing?.[file.key]
            if (kept) return kept
            try {
              return await storeFile(id, file)
            } catch (error) {
              errors.push(toFileError(file.key, error))
              return undefined
            }
          },
          { concurrency },
        )
        const entries = stored.filter((e): e is BackupInfo => e !== undefined)
        const fresh = entries.filter((e) => existing?.[e.originalPath] !== e)
        const next =
          fresh.length > 0
            ? await manifests.update(id, (current) =>
                withEntries(id, current, fresh, !!opts.overwrite),
              )
            : await readManifest(id)
        const result: CreateBackupsResult = { backedUp: [], failed: [], errors: [], files: {} }
        for (const entry of entries) {
          const recorded = next?.files[entry.originalPath] ?? entry
          result.backedUp.push(entry.originalPath)
          result.files[entry.originalPath] = recorded
        }
        const order = new Map(filePaths.map((p, i) => [p, i]))
        result.errors = errors.sort((a, b) => (order.get(a.path) ?? 0) - (order.get(b.path) ?? 0))
        result.failed = result.errors.map((e) => e.path)
        return result
      })
    },

    async restoreBackup(uuid, filePath) {
      const id = parseUuid(uuid)
      const file = resolveProjectFile(root, filePath)
      const entry = (await readManifest(id))?.files[file.key]
      if (!entry) return false
      await restoreFile(id, file, entry)
      return true
    },

    async restoreAllBackups(uuid) {
      const id = parseUuid(uuid)
      const result: RestoreAllResult = { restored: [], failed: [], errors: [] }
      const manifest = await readManifest(id)
      if (!manifest) return result
      const keys = Object.keys(manifest.files).sort()
      const outcomes = await pMap(
        keys,
        async (key) => {
          try {
            const entry = manifest.files[key] as BackupInfo
            await restoreFile(id, resolveProjectFile(root, key), entry)
            return undefined
          } catch (error) {
            return toFileError(key, error)
          }
        },
        { concurrency },
      )
      keys.forEach((key, i) => {
        const error = outcomes[i]
        if (error) {
          result.failed.push(key)
          result.errors.push(error)
        } else result.restored.push(key)
      })
      return result
    },

    async listBackups(uuid) {
      const manifest = await readManifest(parseUuid(uuid))
      return manifest ? Object.keys(manifest.files).sort() : undefined
    },

    async getBackupInfo(uuid, filePath) {
      const id = parseUuid(uuid)
      const file = resolveProjectFile(root, filePath)
      return (await readManifest(id))?.files[file.key]
    },

    async getPatchMetadata(uuid) {
      return readManifest(parseUuid(uuid))
    },

    async hasBackup(uuid, filePath) {
      return (await service.getBackupInfo(uuid, filePath)) !== undefined
    },

    async listAllPatches() {
      return [...(await manifests.list())].sort()
    },

    async cleanupBackups(uuid) {
      const id = parseUuid(uuid)
      return patchQueue.run(id, async () => {
        let removed: PatchManifest | undefined
        // Manifest first: a crash after this leaves unreferenced bytes for gc, never a manifest without bytes.
        await manifests.update(id, (current) => {
          removed = current
          return undefined
        })
        if (!removed) return false
        const failures: string[] = []
        await pMap(
          Object.keys(removed.files),
          async (key) => {
            try {
              await store.remove(backupKey(id, key), { freeContent: true })
            } catch (error) {
              failures.push(`${key}: ${error instanceof Error ? error.message : String(error)}`)
            }
          },
          { concurrency },
        )
        if (failures.length > 0) {
          throw new PatchBackupError(
            'STORE_ERROR',
            `Patch ${id} was removed, but the store could not free ${failures.length} file(s): ${failures.join('; ')}. Run 'patch-backup gc' to reclaim the space.`,
          )
        }
        return true
      })
    },
  }
  return service
}
