import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { isPatchBackupError } from '@patch-backup/core'
import { beforeAll, describe, expect, it } from 'vitest'
import { bytesOf, integrityOf } from './fixtures/content.mjs'
import { spawnChild } from './support/child.js'
import { failure } from './support/outcome.js'
import { assertBuilt, createWorkspace, openStack, type Workspace } from './support/workspace.js'

beforeAll(() => assertBuilt())

const WRITERS = 4
const CALLS = 100
const CHURNERS = 4
const ROUNDS = 6
const CHURN_FILES = 8

/** Bytes of the main patch's files: the first 60 of each writer share 30 contents with everyone. */
function mainBytes(writer: number, i: number): Buffer {
  return i < 60
    ? bytesOf(`shared-${i % 30}`, 1 + (((i % 30) * 997) % 20_000))
    : bytesOf(`w${writer}-${i}`, 1 + ((writer * 131 + i * 7919) % 50_000))
}

/** A churner's files reuse the shared contents, so its cleanups race the writers' puts of the same bytes. */
function churnBytes(churner: number, j: number): Buffer {
  const k = (j * 3 + churner) % 30
  return bytesOf(`shared-${k}`, 1 + ((k * 997) % 20_000))
}

async function put(ws: Workspace, file: string, bytes: Buffer): Promise<void> {
  await mkdir(path.dirname(path.join(ws.project, file)), { recursive: true })
  await writeFile(path.join(ws.project, file), bytes)
}

async function countContentFiles(dir: string): Promise<number> {
  let count = 0
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    const full = path.join(dir, name)
    count += (await stat(full)).isDirectory() ? await countContentFiles(full) : 1
  }
  return count
}

async function pollFor(check: () => boolean | Promise<boolean>, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    if (await check()) return true
    await new Promise((resolve) => setTimeout(resolve, 1))
  }
  return false
}

describe('many processes on one root', () => {
  it(`lands all ${WRITERS} x ${CALLS} createBackup calls on one uuid while ${CHURNERS} more back up and clean up other uuids`, async () => {
    const ws = await createWorkspace('many')
    try {
      const expected = new Map<string, Buffer>()
      for (let w = 0; w < WRITERS; w++) {
        for (let i = 0; i < CALLS; i++) {
          const file = `shared/w${w}/f${i}.bin`
          expected.set(file, mainBytes(w, i))
          await put(ws, file, mainBytes(w, i))
        }
      }
      for (let c = 0; c < CHURNERS; c++) {
        for (let j = 0; j < CHURN_FILES; j++) await put(ws, `churn${c}/g${j}.bin`, churnBytes(c, j))
      }

      const started = Date.now()
      const children = [
        ...Array.from({ length: WRITERS }, (_, w) =>
          spawnChild('many.mjs', [
            'backup',
            ws.root,
            ws.project,
            'shared',
            `shared/w${w}`,
            `${CALLS}`,
          ]),
        ),
        ...Array.from({ length: CHURNERS }, (_, c) =>
          spawnChild('many.mjs', [
            'churn',
            ws.root,
            ws.project,
            `churn${c}`,
            `${ROUNDS}`,
            `${CHURN_FILES}`,
          ]),
        ),
      ]
      const exits = await Promise.all(children.map((child) => child.exited))
      const took = Date.now() - started
      for (const [i, exit] of exits.entries()) {
        expect(exit, children[i]?.output()).toEqual({ code: 0, signal: null })
      }
      const calls = WRITERS * CALLS + CHURNERS * ROUNDS * (CHURN_FILES + 1)
      console.log(`${children.length} processes, ${calls} calls on one root in ${took} ms`)

      const { backups } = openStack(ws)
      await expect(backups.listAllPatches()).resolves.toEqual(['shared'])
      const manifest = await backups.getPatchMetadata('shared')
      expect(Object.keys(manifest?.files ?? {}).sort()).toEqual([...expected.keys()].sort())
      for (const [file, bytes] of expected) {
        expect(manifest?.files[file]?.integrity, file).toBe(integrityOf(bytes))
      }

      // Restore every file into an empty directory and compare byte for byte.
      const scratch = path.join(ws.base, 'scratch')
      await mkdir(scratch)
      const restored = await openStack(ws, { cwd: scratch }).backups.restoreAllBackups('shared')
      expect(restored.failed).toEqual([])
      expect(restored.restored).toHaveLength(WRITERS * CALLS)
      for (const [file, bytes] of expected) {
        expect((await readFile(path.join(scratch, file))).equals(bytes), file).toBe(true)
      }

      await expect(backups.verify()).resolves.toEqual({
        patches: 1,
        files: WRITERS * CALLS,
        ok: WRITERS * CALLS,
        problems: [],
      })
      // The churners' cleanups left nothing behind that gc cannot take, and gc takes nothing live.
      await backups.gc()
      await expect(backups.verify()).resolves.toMatchObject({ ok: WRITERS * CALLS, problems: [] })
      const distinct = new Set([...expected.values()].map((b) => integrityOf(b))).size
      await expect(countContentFiles(path.join(ws.cachePath, 'content-v2'))).resolves.toBe(distinct)
      await sleep(50) // a lock this process took is kept 5 ms for a next call (lock-keeper.ts)
      await expect(readdir(ws.manifestsDir)).resolves.toEqual(['shared.json'])
    } finally {
      await ws.dispose()
    }
  })

  it('takes over, within 10 s, the lock of a process killed with SIGKILL inside createBackup', async () => {
    const ws = await createWorkspace('takeover')
    const holder = spawnChild('lock-holder.mjs', ['loop', ws.root, ws.project, 'held'])
    try {
      await holder.waitFor((m) => m.ready === true)
      const lock = path.join(ws.manifestsDir, 'held.json.lock')
      const exists = () =>
        stat(lock).then(
          () => true,
          () => false,
        )
      // Freeze the child at a moment it holds the lock (inside the service's manifest update),
      // check it still does, then kill it there.
      let caught = false
      for (let attempt = 0; attempt < 200 && !caught; attempt++) {
        expect(await pollFor(exists, 10_000), holder.output()).toBe(true)
        holder.child.kill('SIGSTOP')
        caught = await exists()
        if (!caught) holder.child.kill('SIGCONT')
      }
      expect(caught).toBe(true)
      await holder.kill('SIGKILL')
      await expect(exists()).resolves.toBe(true)

      await put(ws, 'after.txt', Buffer.from('after the kill\n'))
      const { backups } = openStack(ws)
      const started = Date.now()
      await backups.createBackup('held', 'after.txt')
      const took = Date.now() - started
      console.log(`lock of a SIGKILLed createBackup taken over after ${took} ms`)
      expect(took).toBeLessThan(10_000)
      const files = await backups.listBackups('held')
      expect(files).toContain('after.txt')
      expect(files?.every((f) => f === 'after.txt' || f.startsWith('loop/'))).toBe(true)
      await expect(backups.verify('held')).resolves.toMatchObject({ problems: [] })
      await sleep(50) // our own lock is kept 5 ms for a next call (lock-keeper.ts), then released
      await expect(readdir(ws.manifestsDir)).resolves.not.toContain('held.json.lock')
    } finally {
      await holder.kill()
      await ws.dispose()
    }
  })

  it('gives up with LOCK_TIMEOUT naming the lock, and a backup that could not be recorded damages nothing', async () => {
    const ws = await createWorkspace('timeout')
    const holder = spawnChild('lock-holder.mjs', ['hold', ws.manifestsDir, 'busy'])
    try {
      await put(ws, 'pkg/a.js', Buffer.from('original a\n'))
      const { backups, manifests } = openStack(ws, { lockTimeoutMs: 1_500 })
      // Another patch holds the same bytes; cleaning it up must not free what 'busy' still needs.
      await backups.createBackup('twin', 'pkg/a.js')
      await holder.kill()
      const before = await backups.createBackup('busy', 'pkg/a.js')
      const manifestBefore = await readFile(manifests.manifestPath('busy'), 'utf8')

      const live = spawnChild('lock-holder.mjs', ['hold', ws.manifestsDir, 'busy'])
      try {
        await live.waitFor((m) => m.locked === true)
        await put(ws, 'pkg/a.js', Buffer.from('patched a\n'))
        const started = Date.now()
        const error = await failure(() =>
          backups.createBackup('busy', 'pkg/a.js', { overwrite: true }),
        )
        const took = Date.now() - started
        expect(isPatchBackupError(error, 'LOCK_TIMEOUT')).toBe(true)
        expect(error.path).toBe(manifests.lockPath('busy'))
        expect(error.message).toContain(manifests.lockPath('busy'))
        expect(took).toBeGreaterThanOrEqual(1_400)
        expect(took).toBeLessThan(10_000)
        await expect(readFile(manifests.manifestPath('busy'), 'utf8')).resolves.toBe(manifestBefore)
      } finally {
        await live.kill()
      }

      // The bytes the manifest still records survive another patch's cleanup and a gc.
      await expect(backups.cleanupBackups('twin')).resolves.toBe(true)
      await backups.gc()
      await expect(backups.getBackupInfo('busy', 'pkg/a.js')).resolves.toEqual(before)
      await expect(backups.restoreBackup('busy', 'pkg/a.js')).resolves.toBe(true)
      await expect(readFile(path.join(ws.project, 'pkg/a.js'), 'utf8')).resolves.toBe(
        'original a\n',
      )
      await expect(backups.verify()).resolves.toMatchObject({ problems: [] })
    } finally {
      await holder.kill()
      await ws.dispose()
    }
  })
})
