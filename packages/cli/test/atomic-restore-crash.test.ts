import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { openPatchBackups } from '../src/index.js'

const child = fileURLToPath(new URL('./fixtures/atomic-restore.mjs', import.meta.url))
const KILLS = Number(process.env.PATCH_BACKUP_CRASH_KILLS ?? 10)
const FILES = 50

/** Spawns one atomic restore and SIGKILLs it `delayMs` after it starts restoring (or lets it finish). */
async function restoreAndKill(store: string, project: string, uuid: string, delayMs: number) {
  const proc = spawn(process.execPath, [child, store, project, uuid], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  proc.stdout.on('data', (d) => {
    out += d
  })
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)))
  while (!out.includes('started') && proc.exitCode === null) await sleep(2)
  await Promise.race([sleep(delayMs), exited])
  proc.kill('SIGKILL')
  await exited
  return out.includes('"restored"')
}

describe('an atomic restore killed at random moments', () => {
  it(`recovers to all-original or all-as-before after ${KILLS} SIGKILLs`, {
    timeout: 600_000,
  }, async () => {
    const work = await mkdtemp(path.join(os.tmpdir(), 'pb-atomic-crash-'))
    const store = path.join(work, 'store')
    const project = path.join(work, 'project')
    const files = Array.from({ length: FILES }, (_, i) => `node_modules/pkg${i % 5}/f${i}.js`)
    const original = new Map(files.map((f) => [f, randomBytes(48 * 1024)]))
    const patched = new Map(files.map((f) => [f, Buffer.from(`patched ${f}`)]))
    const writeAll = async (bytes: Map<string, Buffer>) => {
      for (const [f, b] of bytes) {
        await mkdir(path.dirname(path.join(project, f)), { recursive: true })
        await writeFile(path.join(project, f), b)
      }
    }
    const outcomes = { finished: 0, rolledForward: 0, rolledBack: 0, untouched: 0 }
    try {
      await writeAll(original)
      const backups = openPatchBackups({ dir: store, cwd: project })
      await backups.createBackups('crash', files)
      // Calibrate: how long one whole restore takes here, so kills spread over all its phases.
      await writeAll(patched)
      const started = Date.now()
      expect(await restoreAndKill(store, project, 'crash', 60_000)).toBe(true)
      const span = Date.now() - started
      for (let kill = 0; kill < KILLS; kill++) {
        await writeAll(patched)
        const finished = await restoreAndKill(store, project, 'crash', Math.random() * span)
        const recovered = await backups.recover('crash')
        if (finished) outcomes.finished++
        else if (recovered?.outcome === 'rolled-forward') outcomes.rolledForward++
        else if (recovered?.outcome === 'rolled-back') outcomes.rolledBack++
        else outcomes.untouched++

        const now = await Promise.all(files.map((f) => readFile(path.join(project, f))))
        const allOriginal = files.every((f, i) => now[i]?.equals(original.get(f) as Buffer))
        const allPatched = files.every((f, i) => now[i]?.equals(patched.get(f) as Buffer))
        expect(allOriginal || allPatched, `kill ${kill}: a mix of original and patched files`).toBe(
          true,
        )
        for (const dir of new Set(files.map((f) => path.dirname(path.join(project, f))))) {
          expect(
            (await readdir(dir)).filter((n) => n.endsWith('.tmp')),
            `kill ${kill}: temp files left`,
          ).toEqual([])
        }
        await expect(backups.getPatchMetadata('crash')).resolves.not.toHaveProperty(
          'restoreJournal',
        )
      }
      expect((await backups.verify()).problems).toEqual([])
      console.log(
        `atomic restore crash loop: ${KILLS} kills, ${FILES} files, restore ${span} ms`,
        outcomes,
      )
    } finally {
      await rm(work, { recursive: true, force: true })
    }
  })
})
