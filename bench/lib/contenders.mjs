// The three contenders, each bound to a store root and a project directory, with the same
// operations: backupEach (one call per file, awaited in turn), backupBatch, restoreAll, list,
// cleanup. Files are project-relative paths.
import { createHash } from 'node:crypto'
import { copyFile, mkdir, readdir, readFile, rm, unlink, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { createBackup, openPatchBackups } from '@patch-backup/cli'
import cacache from 'cacache'

export const CONTENDERS = ['floor', 'naive', 'patch-backup']

/** floor: a plain fs.copyFile loop into a directory per patch, and fs.copyFile back. */
export function floor(root, project) {
  const copies = new Map() // uuid -> files, in the order they were copied
  const dirOf = (uuid) => path.join(root, uuid)
  async function backupEach(uuid, files) {
    await mkdir(dirOf(uuid), { recursive: true })
    const known = copies.get(uuid) ?? []
    copies.set(uuid, known)
    for (const file of files) {
      await copyFile(path.join(project, file), path.join(dirOf(uuid), String(known.length)))
      known.push(file)
    }
  }
  return {
    name: 'floor',
    backupEach,
    backupBatch: backupEach,
    async restoreAll(uuid) {
      const known = copies.get(uuid) ?? []
      for (let i = 0; i < known.length; i++) {
        await copyFile(path.join(dirOf(uuid), String(i)), path.join(project, known[i]))
      }
      return known.length
    },
    async list(uuid) {
      return (await readdir(dirOf(uuid))).length
    },
    async cleanup(uuid) {
      await rm(dirOf(uuid), { recursive: true, force: true })
      copies.delete(uuid)
    },
  }
}

const keyOf = (uuid, file) =>
  `socket:patch:backup:${uuid}:${createHash('sha256').update(file).digest('hex').slice(0, 16)}`

/**
 * naive: the design patch-backup replaces. Per file: cacache.put of the whole file, then read the
 * patch's JSON manifest, add the entry, write it back. No lock, no batching, no streaming.
 */
export function naive(root, project) {
  const cache = path.join(root, '_cacache')
  const manifests = path.join(root, '_patches', 'manifests')
  const manifestPath = (uuid) => path.join(manifests, `${uuid}.json`)
  async function readManifest(uuid) {
    try {
      return JSON.parse(await readFile(manifestPath(uuid), 'utf8'))
    } catch (error) {
      if (error.code === 'ENOENT') return undefined
      throw error
    }
  }
  async function backupOne(uuid, file) {
    const data = await readFile(path.join(project, file))
    const integrity = await cacache.put(cache, keyOf(uuid, file), data, { algorithms: ['sha256'] })
    const now = new Date().toISOString()
    const manifest = (await readManifest(uuid)) ?? { uuid, patchedAt: now, files: {} }
    manifest.files[file] = {
      integrity: String(integrity),
      size: data.length,
      backedUpAt: now,
      originalPath: file,
    }
    await mkdir(manifests, { recursive: true })
    await writeFile(manifestPath(uuid), JSON.stringify(manifest, null, 2))
  }
  async function backupEach(uuid, files) {
    for (const file of files) await backupOne(uuid, file)
  }
  return {
    name: 'naive',
    backupOne,
    backupEach,
    backupBatch: backupEach, // the naive design has no batch call
    async restoreAll(uuid) {
      const manifest = await readManifest(uuid)
      const files = Object.keys(manifest?.files ?? {})
      for (const file of files) {
        const { data } = await cacache.get(cache, keyOf(uuid, file))
        await writeFile(path.join(project, file), data)
      }
      return files.length
    },
    async list(uuid) {
      const manifest = await readManifest(uuid)
      return manifest ? Object.keys(manifest.files).sort().length : 0
    },
    async getPatchMetadata(uuid) {
      return readManifest(uuid)
    },
    async hasBackup(uuid, file) {
      return (await readManifest(uuid))?.files[file] !== undefined
    },
    async cleanup(uuid) {
      // Naive and unsafe: frees content without asking whether another patch shares it.
      const manifest = await readManifest(uuid)
      for (const [file, entry] of Object.entries(manifest?.files ?? {})) {
        await cacache.rm.entry(cache, keyOf(uuid, file))
        await cacache.rm.content(cache, entry.integrity)
      }
      await unlink(manifestPath(uuid)).catch(() => {})
    },
  }
}

/** patch-backup: the public API on the default adapters (cacache store + JSON manifests). */
export function patchBackup(root, project, options = {}) {
  const backups = openPatchBackups({ dir: root, cwd: project, ...options })
  return {
    name: 'patch-backup',
    backups,
    /**
     * The seed's call pattern: the module-level `createBackup`, once per file, awaited. The root
     * comes from PATCH_BACKUP_DIR at each call, as a patcher using the seed's module would set it.
     */
    async backupEach(uuid, files) {
      const before = process.env.PATCH_BACKUP_DIR
      process.env.PATCH_BACKUP_DIR = root
      try {
        for (const file of files) await createBackup(uuid, path.join(project, file))
      } finally {
        if (before === undefined) delete process.env.PATCH_BACKUP_DIR
        else process.env.PATCH_BACKUP_DIR = before
      }
    },
    async backupBatch(uuid, files) {
      const result = await backups.createBackups(uuid, files)
      if (result.failed.length > 0) throw new Error(JSON.stringify(result.errors.slice(0, 3)))
    },
    async restoreAll(uuid, options) {
      const result = await backups.restoreAllBackups(uuid, options)
      if (result.failed.length > 0) throw new Error(JSON.stringify(result.errors.slice(0, 3)))
      return result.restored.length
    },
    async list(uuid) {
      return (await backups.listBackups(uuid))?.length ?? 0
    },
    getPatchMetadata: (uuid) => backups.getPatchMetadata(uuid),
    hasBackup: (uuid, file) => backups.hasBackup(uuid, file),
    async cleanup(uuid) {
      if (!(await backups.cleanupBackups(uuid))) throw new Error(`no patch ${uuid} to clean up`)
    },
  }
}

export function openContender(name, root, project) {
  if (name === 'floor') return floor(root, project)
  if (name === 'naive') return naive(root, project)
  return patchBackup(root, project)
}
