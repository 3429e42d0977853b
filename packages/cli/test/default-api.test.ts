import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import * as api from '../src/index.js'

describe('module-level functions on the default root', () => {
  let work: string
  const saved = { dir: process.env.PATCH_BACKUP_DIR, cwd: process.cwd() }
  beforeEach(async () => {
    work = await mkdtemp(path.join(os.tmpdir(), 'pb-default-'))
    await mkdir(path.join(work, 'project', 'node_modules', 'a'), { recursive: true })
    await writeFile(path.join(work, 'project', 'node_modules', 'a', 'index.js'), 'original')
    process.chdir(path.join(work, 'project'))
  })
  afterEach(async () => {
    process.chdir(saved.cwd)
    if (saved.dir === undefined) delete process.env.PATCH_BACKUP_DIR
    else process.env.PATCH_BACKUP_DIR = saved.dir
    await rm(work, { recursive: true, force: true })
  })

  it('uses the root in force at each call', async () => {
    process.env.PATCH_BACKUP_DIR = path.join(work, 'store-1')
    await api.createBackup('p1', 'node_modules/a/index.js')
    process.env.PATCH_BACKUP_DIR = path.join(work, 'store-2')
    await expect(api.listAllPatches()).resolves.toEqual([])
    process.env.PATCH_BACKUP_DIR = path.join(work, 'store-1')
    await expect(api.listAllPatches()).resolves.toEqual(['p1'])
    const manifest = JSON.parse(
      await readFile(path.join(work, 'store-1/_patches/manifests/p1.json'), 'utf8'),
    )
    expect(Object.keys(manifest.files)).toEqual(['node_modules/a/index.js'])
  })

  it('runs the seed flow: backup, patch, restore, cleanup', async () => {
    process.env.PATCH_BACKUP_DIR = path.join(work, 'store')
    const file = 'node_modules/a/index.js'
    const info = await api.createBackup('flow', file)
    expect(info.integrity).toMatch(/^sha256-/)
    await writeFile(file, 'patched')
    await expect(api.restoreBackup('flow', file)).resolves.toBe(true)
    await expect(readFile(file, 'utf8')).resolves.toBe('original')
    await expect(api.hasBackup('flow', file)).resolves.toBe(true)
    await expect(api.cleanupBackups('flow')).resolves.toBe(true)
    await expect(api.getPatchMetadata('flow')).resolves.toBeUndefined()
  })

  it('records every file of 100 concurrent module-level calls', async () => {
    process.env.PATCH_BACKUP_DIR = path.join(work, 'store')
    const files = Array.from({ length: 100 }, (_, i) => `node_modules/a/f${i}.js`)
    await Promise.all(files.map((f) => writeFile(f, f)))
    await Promise.all(files.map((f) => api.createBackup('many', f)))
    await expect(api.listBackups('many')).resolves.toHaveLength(100)
  })
})
