import { chmod, chown, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import type { PatchBackups } from '@patch-backup/core'
import { beforeAll, describe, expect, it } from 'vitest'
import { bytesOf } from './fixtures/content.mjs'
import { canMountPrivately, canSwitchUser, runChild } from './support/child.js'
import { failure } from './support/outcome.js'
import { snapshotTree } from './support/tree.js'
import { assertBuilt, createWorkspace, openStack, type Workspace } from './support/workspace.js'

beforeAll(() => assertBuilt())

const NOBODY = 65534
const A = 'pkg/a.js'
const B = 'pkg/b.js'

interface CallResult {
  ok: boolean
  value?: unknown
  error?: { code: string; message: string; path?: string }
}
type Call = { call: keyof PatchBackups; args: unknown[] }

/** Runs `calls` in a child (as another user, in a namespace, under a limit) and returns each outcome. */
async function callsInChild(
  ws: Workspace,
  calls: Call[],
  options: Parameters<typeof runChild>[2] = {},
): Promise<CallResult[]> {
  const run = await runChild<{ results: CallResult[] }>(
    'calls.mjs',
    [ws.root, ws.project, JSON.stringify(calls)],
    options,
  )
  expect({ code: run.code, signal: run.signal }, run.output).toEqual({ code: 0, signal: null })
  return run.result.results
}

async function write(ws: Workspace, file: string, bytes: string | Buffer): Promise<void> {
  await mkdir(path.dirname(path.join(ws.project, file)), { recursive: true })
  await writeFile(path.join(ws.project, file), bytes)
}

/** A store with two backed-up (then patched) files, and a snapshot of the whole store. */
async function backedUp(ws: Workspace) {
  const { backups } = openStack(ws)
  await write(ws, A, 'original a\n')
  await write(ws, B, bytesOf('b', 100_000))
  await backups.createBackups('p', [A, B])
  await write(ws, A, 'patched a\n')
  await sleep(20) // the patch's lock, kept 5 ms for a next call, is released by then
  return { backups, store: await snapshotTree(ws.root) }
}

function expectExplained(result: CallResult | undefined, codes: string[], where: string): void {
  expect(result?.ok, JSON.stringify(result)).toBe(false)
  expect(codes).toContain(result?.error?.code)
  expect(`${result?.error?.path ?? ''} ${result?.error?.message}`).toContain(where)
}

/** Lets another user walk into the workspace (mkdtemp makes it 0700). */
async function openTo(ws: Workspace, uid: number, writable: string[]): Promise<void> {
  await chmod(ws.base, 0o755)
  for (const dir of writable) {
    await mkdir(dir, { recursive: true })
    const walk = async (p: string): Promise<void> => {
      await chown(p, uid, uid)
      for (const name of await readdir(p).catch(() => [] as string[]))
        await walk(path.join(p, name))
    }
    await walk(dir)
  }
}

describe('read-only directories', () => {
  it.skipIf(!canSwitchUser())(
    'a read-only target directory: TARGET_UNWRITABLE with the path, the target as it was',
    async () => {
      const ws = await createWorkspace('ro-target')
      try {
        const { backups, store } = await backedUp(ws)
        await openTo(ws, NOBODY, [ws.project])
        await chmod(path.join(ws.project, 'pkg'), 0o555)
        const [one, all] = await callsInChild(
          ws,
          [
            { call: 'restoreBackup', args: ['p', A] },
            { call: 'restoreAllBackups', args: ['p'] },
          ],
          { uid: NOBODY, gid: NOBODY },
        )
        expectExplained(one, ['TARGET_UNWRITABLE'], A)
        expect(one?.error?.message).toContain(path.join(ws.project, A))
        // B still holds its backup: nothing to write there, so it counts as restored.
        expect(all?.value).toMatchObject({ restored: [B], failed: [A] })
        await expect(readFile(path.join(ws.project, A), 'utf8')).resolves.toBe('patched a\n')
        expect((await readdir(path.join(ws.project, 'pkg'))).sort()).toEqual(['a.js', 'b.js'])
        expect(await snapshotTree(ws.root)).toEqual(store)
        await chmod(path.join(ws.project, 'pkg'), 0o755)
        await expect(backups.restoreAllBackups('p')).resolves.toMatchObject({ failed: [] })
      } finally {
        await ws.dispose()
      }
    },
  )

  it.skipIf(!canSwitchUser())(
    'a read-only store: backups and cleanups fail with a code and the path, restores still work, nothing changes',
    async () => {
      const ws = await createWorkspace('ro-store')
      try {
        const { backups, store } = await backedUp(ws)
        await write(ws, 'pkg/new.js', 'new file\n')
        await openTo(ws, NOBODY, [ws.project])
        const results = await callsInChild(
          ws,
          [
            { call: 'createBackup', args: ['p', 'pkg/new.js'] },
            { call: 'createBackup', args: ['other', 'pkg/new.js'] },
            { call: 'createBackup', args: ['p', A, { overwrite: true }] },
            { call: 'cleanupBackups', args: ['p'] },
            { call: 'restoreBackup', args: ['p', A] },
            { call: 'listAllPatches', args: [] },
            { call: 'verify', args: [] },
          ],
          { uid: NOBODY, gid: NOBODY },
        )
        const [newFile, newPatch, overwrite, cleanup, restore, list, verify] = results
        // Root owns the store; to this user it is read-only. A backup takes the patch's lock (in
        // the manifests directory) before it writes the store, so that is what it cannot do first.
        expectExplained(newFile, ['MANIFEST_UNWRITABLE'], ws.manifestsDir)
        expectExplained(newPatch, ['MANIFEST_UNWRITABLE'], ws.manifestsDir)
        expectExplained(overwrite, ['MANIFEST_UNWRITABLE'], ws.manifestsDir)
        expectExplained(cleanup, ['MANIFEST_UNWRITABLE'], ws.manifestsDir)
        expect(restore).toEqual({ ok: true, value: true })
        expect(list?.value).toEqual(['p'])
        expect(verify?.value).toMatchObject({ ok: 2, problems: [] })
        expect(await snapshotTree(ws.root)).toEqual(store)
        await expect(readFile(path.join(ws.project, A), 'utf8')).resolves.toBe('original a\n')
        await expect(backups.verify()).resolves.toMatchObject({ ok: 2, problems: [] })
      } finally {
        await ws.dispose()
      }
    },
  )

  it.skipIf(!canMountPrivately())(
    'a read-only file system (EROFS) under the store and under the target',
    async () => {
      const ws = await createWorkspace('erofs')
      try {
        const { backups, store } = await backedUp(ws)
        await write(ws, 'pkg/new.js', 'new file\n')
        const ro = (dir: string) =>
          `mount --bind '${dir}' '${dir}' && mount -o remount,ro,bind '${dir}'`
        const results = await callsInChild(
          ws,
          [
            { call: 'createBackup', args: ['p', 'pkg/new.js'] },
            { call: 'cleanupBackups', args: ['p'] },
            { call: 'restoreBackup', args: ['p', A] },
            { call: 'verify', args: [] },
          ],
          {
            wrapper: ['unshare', '-m'],
            shellPrefix: `${ro(ws.root)} && ${ro(path.join(ws.project, 'pkg'))}`,
          },
        )
        const [create, cleanup, restore, verify] = results
        expectExplained(create, ['MANIFEST_UNWRITABLE'], ws.manifestsDir)
        expect(create?.error?.message).toContain('EROFS')
        expectExplained(cleanup, ['MANIFEST_UNWRITABLE'], ws.manifestsDir)
        expectExplained(restore, ['TARGET_UNWRITABLE'], A)
        expect(verify?.value).toMatchObject({ ok: 2, problems: [] })
        expect(await snapshotTree(ws.root)).toEqual(store)
        await expect(readFile(path.join(ws.project, A), 'utf8')).resolves.toBe('patched a\n')
        await expect(backups.restoreBackup('p', A)).resolves.toBe(true)
      } finally {
        await ws.dispose()
      }
    },
  )
})

describe('a full disk', () => {
  it.skipIf(!canMountPrivately())(
    'a real 2 MiB tmpfs: every failure explained, and every backup made before it survives',
    async () => {
      const ws = await createWorkspace('tmpfs')
      try {
        await mkdir(ws.root)
        const run = await runChild<{
          filledAt: number
          failures: { code: string; message: string; path?: string; overwrite: boolean }[]
          problems: unknown[]
          restored: number
          confirmed: number
          after: boolean
        }>('full-disk.mjs', [ws.root, ws.project], {
          wrapper: ['unshare', '-m'],
          shellPrefix: `mount -t tmpfs -o size=2m tmpfs '${ws.root}'`,
        })
        expect({ code: run.code, signal: run.signal }, run.output).toEqual({
          code: 0,
          signal: null,
        })
        const report = run.result
        const codes = [...new Set(report.failures.map((f) => f.code))].sort()
        console.log(
          `full tmpfs: ${report.confirmed} backups confirmed, ${report.failures.length} refused (${codes.join(', ')}), ${report.restored} restored byte for byte after`,
        )
        expect(report.problems).toEqual([])
        expect(report.filledAt).toBeGreaterThan(5)
        expect(report.failures.length).toBeGreaterThan(0)
        for (const failure of report.failures) {
          expect(['STORE_ERROR', 'MANIFEST_UNWRITABLE']).toContain(failure.code)
          expect(failure.message).toMatch(/ENOSPC|no space/i)
          // Which file failed, and where the full disk is.
          expect(failure.path).toBeDefined()
          expect(`${failure.path} ${failure.message}`).toContain(ws.root)
        }
        expect(report.restored).toBe(report.confirmed)
        expect(report.after).toBe(true)
      } finally {
        await ws.dispose()
      }
    },
  )

  it('a file-size limit (ulimit -f, EFBIG): the process gets an error, not a fatal SIGXFSZ', async () => {
    const ws = await createWorkspace('efbig')
    try {
      const { backups } = openStack(ws)
      // A manifest bigger than the limit, so its next rewrite fails too.
      // About 400 KiB of JSON, well past the limit below whatever unit the shell counts it in.
      const many = Array.from({ length: 1000 }, (_, i) => `many/${'n'.repeat(100)}${i}.js`)
      for (const file of many) await write(ws, file, file)
      await backups.createBackups('big-manifest', many)
      await write(ws, 'small.js', 'small\n')
      await write(ws, 'large.bin', bytesOf('large', 1024 * 1024))
      await sleep(20) // the lock the batch took is kept 5 ms for a next call
      const manifests = await snapshotTree(ws.manifestsDir)
      // dash counts ulimit -f in 512-byte blocks, bash in KiB: 128 to 256 KiB either way.
      const results = await callsInChild(
        ws,
        [
          { call: 'createBackup', args: ['p', 'small.js'] },
          { call: 'createBackup', args: ['p', 'large.bin'] },
          { call: 'createBackup', args: ['big-manifest', 'small.js'] },
          { call: 'restoreBackup', args: ['p', 'small.js'] },
        ],
        { shellPrefix: 'ulimit -f 256' },
      )
      const [small, large, grown, restore] = results
      expect(small?.ok, JSON.stringify(small)).toBe(true)
      expectExplained(large, ['STORE_ERROR'], ws.cachePath)
      expect(large?.error?.message).toContain('EFBIG')
      expectExplained(grown, ['MANIFEST_UNWRITABLE'], ws.manifestsDir)
      expect(restore).toEqual({ ok: true, value: true })
      const after = await snapshotTree(ws.manifestsDir)
      expect(after.filter((l) => l.startsWith('big-manifest.json'))).toEqual(
        manifests.filter((l) => l.startsWith('big-manifest.json')),
      )
      await expect(backups.verify()).resolves.toMatchObject({ ok: 1001, problems: [] })
    } finally {
      await ws.dispose()
    }
  })
})

describe('a file where a directory should be (ENOTDIR)', () => {
  it('the cacache directory is a file: STORE_ERROR naming it; manifests untouched', async () => {
    const ws = await createWorkspace('enotdir-cache')
    try {
      const { backups } = await backedUp(ws)
      const manifests = await snapshotTree(ws.manifestsDir)
      await rm(ws.cachePath, { recursive: true })
      await writeFile(ws.cachePath, 'not a directory')
      await write(ws, 'pkg/new.js', 'new\n')
      const error = await failure(() => backups.createBackup('p', 'pkg/new.js'))
      expect(error.code).toBe('STORE_ERROR')
      expect(`${error.path ?? ''} ${error.message}`).toContain(ws.cachePath)
      const restore = await failure(() => backups.restoreBackup('p', A))
      expect(restore.code).toBe('STORE_ERROR')
      await sleep(20) // the lock the backup took is kept 5 ms for a next call
      expect(await snapshotTree(ws.manifestsDir)).toEqual(manifests)
      await expect(readFile(path.join(ws.project, A), 'utf8')).resolves.toBe('patched a\n')
    } finally {
      await ws.dispose()
    }
  })

  it('the manifests directory is a file: MANIFEST_UNREADABLE naming it; the store untouched', async () => {
    const ws = await createWorkspace('enotdir-manifests')
    try {
      const { backups } = await backedUp(ws)
      const cache = await snapshotTree(ws.cachePath)
      await rm(ws.manifestsDir, { recursive: true })
      await writeFile(ws.manifestsDir, 'not a directory')
      for (const call of [
        () => backups.createBackup('p', A),
        () => backups.restoreBackup('p', A),
        () => backups.listAllPatches(),
        () => backups.cleanupBackups('p'),
      ]) {
        const error = await failure(call)
        expect(['MANIFEST_UNREADABLE', 'MANIFEST_UNWRITABLE']).toContain(error.code)
        expect(error.path).toContain(ws.manifestsDir)
      }
      expect(await snapshotTree(ws.cachePath)).toEqual(cache)
    } finally {
      await ws.dispose()
    }
  })

  it('an injected ENOSPC from the store: STORE_ERROR naming the file, and the manifest unchanged', async () => {
    const ws = await createWorkspace('enospc')
    try {
      const { backups: plain } = await backedUp(ws)
      const full = Object.assign(new Error('ENOSPC: no space left on device, write'), {
        code: 'ENOSPC',
        syscall: 'write',
      })
      const { backups, manifests } = openStack(ws, {
        wrapStore: (store) => ({
          ...store,
          put: async (_key, data) => {
            if (typeof data === 'object' && 'resume' in data) data.resume()
            throw full
          },
        }),
      })
      const before = await readFile(manifests.manifestPath('p'), 'utf8')
      await write(ws, 'pkg/new.js', 'new\n')
      const error = await failure(() => backups.createBackup('p', 'pkg/new.js'))
      expect(error.code).toBe('STORE_ERROR')
      expect(error.message).toContain('ENOSPC')
      expect(error.path).toBe('pkg/new.js')
      expect(error.message).toContain(path.join(ws.project, 'pkg/new.js'))
      const over = await failure(() => backups.createBackup('p', A, { overwrite: true }))
      expect(over.code).toBe('STORE_ERROR')
      await expect(readFile(manifests.manifestPath('p'), 'utf8')).resolves.toBe(before)
      await expect(plain.restoreAllBackups('p')).resolves.toMatchObject({ failed: [] })
    } finally {
      await ws.dispose()
    }
  })
})
