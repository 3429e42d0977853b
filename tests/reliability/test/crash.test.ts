import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import type { PatchManifest } from '@patch-backup/core'
import { beforeAll, describe, expect, it } from 'vitest'
import { bytesOf, integrityOf, POOL, poolBytes, prng } from './fixtures/content.mjs'
import { spawnChild } from './support/child.js'
import { sha256File } from './support/tree.js'
import {
  assertBuilt,
  createWorkspace,
  fromEnv,
  openStack,
  type Workspace,
} from './support/workspace.js'

beforeAll(() => assertBuilt())

const KILLS = fromEnv('PATCH_BACKUP_CRASH_KILLS', 8)
const LANES = 3
const UUIDS = Array.from({ length: LANES }, (_, l) => [0, 1, 2].map((i) => `lane${l}-u${i}`)).flat()

type Start =
  | { id: string; op: 'backup'; uuid: string; files: Record<string, number>; overwrite: boolean }
  | {
      id: string
      op: 'restore'
      uuid: string
      files: Record<string, { before: string | null; after: string }>
    }
  | { id: string; op: 'cleanup'; uuid: string }
type LogLine =
  | ({ phase: 'start' } & Start)
  | { id: string; phase: 'done'; files?: Record<string, string>; removed?: boolean }
  | { id: string; phase: 'error'; error: { code: string; message: string } }
  | { phase: 'ready' }

/** What the parent knows is backed up: uuid -> file -> integrity. */
type Model = Map<string, Map<string, string>>

const poolIndex = new Map<string, number>()
for (let k = 0; k < POOL; k++) poolIndex.set(integrityOf(poolBytes(k)), k)

async function readLog(file: string): Promise<LogLine[]> {
  const text = await readFile(file, 'utf8').catch(() => '')
  return text
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line) => JSON.parse(line) as LogLine)
}

async function countLines(file: string): Promise<number> {
  const text = await readFile(file, 'utf8').catch(() => '')
  return text.split('\n').length - 1
}

async function walkFiles(dir: string, base = dir): Promise<string[]> {
  const out: string[] = []
  for (const name of await readdir(dir)) {
    const full = path.join(dir, name)
    if ((await stat(full)).isDirectory()) out.push(...(await walkFiles(full, base)))
    else out.push(path.relative(base, full))
  }
  return out
}

const asRecord = (files: Map<string, string> | undefined) =>
  Object.fromEntries([...(files ?? new Map<string, string>())].sort())
const filesOf = (manifest: PatchManifest | undefined) =>
  manifest
    ? Object.fromEntries(
        Object.entries(manifest.files)
          .map(([file, info]) => [file, info.integrity] as const)
          .sort(),
      )
    : undefined

interface Figures {
  kills: number
  completedCalls: number
  inFlightAtKill: number
  restoresChecked: number
  bytesChecked: number
  /** Distinct leftovers seen: stale locks of killed holders, temp files of killed writers. */
  staleLocksLeft: Set<string>
  manifestTempsLeft: Set<string>
  restoreTempsLeft: Set<string>
}

/** Applies a killed child's log to the model; returns the calls that were in flight at the kill. */
function replay(lines: LogLine[], model: Model, figures: Figures): Start[] {
  const open = new Map<string, Start>()
  for (const line of lines) {
    if (line.phase === 'ready') continue
    if (line.phase === 'start') {
      open.set(line.id, line)
      continue
    }
    if (line.phase === 'error') {
      throw new Error(`the child's call ${line.id} failed: ${JSON.stringify(line.error)}`)
    }
    const start = open.get(line.id)
    open.delete(line.id)
    if (!start) continue
    figures.completedCalls++
    if (start.op === 'backup') {
      const files = model.get(start.uuid) ?? new Map<string, string>()
      for (const [file, k] of Object.entries(start.files)) {
        const reported = line.files?.[file]
        const written = integrityOf(poolBytes(k))
        // The first backup wins unless overwrite: a second one reports the bytes already kept.
        const expected = start.overwrite ? written : (files.get(file) ?? written)
        expect(reported, `${start.id} ${start.uuid} ${file}`).toBe(expected)
        files.set(file, reported as string)
      }
      model.set(start.uuid, files)
    } else if (start.op === 'cleanup') {
      expect(line.removed, `${start.id} cleanup ${start.uuid}`).toBe(model.has(start.uuid))
      model.delete(start.uuid)
    }
  }
  return [...open.values()]
}

async function checkAfterKill(
  ws: Workspace,
  run: number,
  model: Model,
  inFlight: Start[],
  figures: Figures,
): Promise<void> {
  const { backups, manifests } = openStack(ws, { lockStaleMs: 2_000 })

  // Only manifests, a killed writer's temp files and a killed holder's lock are in the manifests dir.
  for (const name of await readdir(ws.manifestsDir).catch(() => [] as string[])) {
    if (/^[A-Za-z0-9][\w.-]*\.json$/.test(name)) continue
    if (/^\.[\w.-]+\.json\.\d+\.[a-z0-9]+\.tmp$/.test(name)) figures.manifestTempsLeft.add(name)
    else if (name.endsWith('.json.lock')) figures.staleLocksLeft.add(`${run}:${name}`)
    else throw new Error(`unexpected ${name} in the manifests directory`)
  }
  // Every manifest parses.
  const actual = new Map<string, Record<string, string> | undefined>()
  for (const uuid of UUIDS) actual.set(uuid, filesOf(await manifests.get(uuid)))

  // A call in flight at the kill either happened or did not: nothing in between.
  for (const start of inFlight) {
    const now = actual.get(start.uuid)
    if (start.op === 'backup') {
      const known = model.get(start.uuid)
      const fresh = Object.keys(start.files).filter((f) => !known?.has(f))
      if (!start.overwrite) {
        // One manifest write per call: the new entries of a batch land together or not at all.
        expect(new Set(fresh.map((f) => now?.[f] !== undefined)).size).toBeLessThanOrEqual(1)
      }
      for (const [file, k] of Object.entries(start.files)) {
        const allowed = start.overwrite
          ? [known?.get(file), integrityOf(poolBytes(k))]
          : known?.has(file)
            ? [known.get(file)]
            : [undefined, integrityOf(poolBytes(k))]
        expect(allowed, `in-flight backup ${start.id} of ${file}`).toContain(now?.[file])
      }
      for (const file of Object.keys(known ?? {})) expect(now?.[file]).toBeDefined()
    } else if (start.op === 'cleanup') {
      if (now !== undefined) expect(now).toEqual(asRecord(model.get(start.uuid)))
    } else {
      // An interrupted restore leaves each target whole: the old bytes or the restored ones.
      for (const [file, { before, after }] of Object.entries(start.files)) {
        expect([before, after], `in-flight restore of ${file}`).toContain(
          await sha256File(path.join(ws.project, file)),
        )
      }
    }
    // Adopt what the in-flight call did.
    if (start.op !== 'restore') {
      if (now === undefined) model.delete(start.uuid)
      else model.set(start.uuid, new Map(Object.entries(now)))
    }
  }

  // Every call reported complete is on disk, exactly.
  for (const uuid of UUIDS) {
    expect(actual.get(uuid), `manifest of ${uuid} after kill ${run}`).toEqual(
      model.has(uuid) ? asRecord(model.get(uuid)) : undefined,
    )
  }
  await expect(backups.listAllPatches()).resolves.toEqual([...model.keys()].sort())

  // Each backed-up file restores byte for byte, into an empty directory.
  const scratch = path.join(ws.base, `scratch-${run}`)
  await mkdir(scratch)
  const elsewhere = openStack(ws, { cwd: scratch, lockStaleMs: 2_000 }).backups
  for (const [uuid, files] of model) {
    const result = await elsewhere.restoreAllBackups(uuid)
    expect(result.errors).toEqual([])
    expect(result.restored.sort()).toEqual([...files.keys()].sort())
    for (const [file, integrity] of files) {
      const k = poolIndex.get(integrity)
      expect(k, `${uuid} ${file} holds bytes no call wrote`).toBeDefined()
      const bytes = await readFile(path.join(scratch, file))
      expect(bytes.equals(poolBytes(k as number)), `${uuid} ${file}`).toBe(true)
      figures.restoresChecked++
      figures.bytesChecked += bytes.length
    }
  }

  const total = [...model.values()].reduce((n, files) => n + files.size, 0)
  await expect(backups.verify()).resolves.toMatchObject({ files: total, ok: total, problems: [] })
  // gc after a crash frees only garbage: everything still verifies.
  await backups.gc()
  await expect(backups.verify()).resolves.toMatchObject({ files: total, ok: total, problems: [] })

  // The store root holds only the store; the project only the lanes' files and restore temp files.
  // With nothing committed, a kill may have come before the root was made, or after _patches was
  // made and before _cacache was.
  const rootEntries = (
    await readdir(ws.root).catch((error: NodeJS.ErrnoException) => {
      if (model.size === 0 && error.code === 'ENOENT') return [] as string[]
      throw error
    })
  ).sort()
  if (model.size > 0) expect(rootEntries).toEqual(['_cacache', '_patches'])
  else for (const entry of rootEntries) expect(['_cacache', '_patches']).toContain(entry)
  for (const file of await walkFiles(ws.project)) {
    if (/^lane\d+\/d\d\/f\d\.bin$/.test(file)) continue
    expect(path.basename(file), file).toMatch(/^\.pb-(\d+-)?[0-9a-f]+\.tmp$/)
    figures.restoreTempsLeft.add(file)
  }
}

describe('crashes', () => {
  it(`loses nothing across ${KILLS} SIGKILLs at random moments of backups, restores and cleanups`, {
    timeout: 60_000 + KILLS * 15_000,
  }, async () => {
    const ws = await createWorkspace('crash')
    const seed = fromEnv('PATCH_BACKUP_CRASH_SEED', Date.now() % 1_000_000)
    const random = prng(seed)
    const model: Model = new Map()
    const figures: Figures = {
      kills: 0,
      completedCalls: 0,
      inFlightAtKill: 0,
      restoresChecked: 0,
      bytesChecked: 0,
      staleLocksLeft: new Set(),
      manifestTempsLeft: new Set(),
      restoreTempsLeft: new Set(),
    }
    try {
      for (let run = 0; run < KILLS; run++) {
        const log = path.join(ws.base, `log-${run}.jsonl`)
        const child = spawnChild('crash-child.mjs', [
          ws.root,
          ws.project,
          log,
          String(seed * 1000 + run),
          String(LANES),
        ])
        try {
          await child.waitFor((m) => m.ready === true)
          if (random() < 0.5) await sleep(50 + random() * 2_000)
          else {
            // Kill just after a chosen call starts, to land in its early steps.
            const target = 1 + Math.floor(random() * 40)
            const deadline = Date.now() + 15_000
            while ((await countLines(log)) < target && Date.now() < deadline) await sleep(2)
            await sleep(random() * 15)
          }
        } finally {
          await child.kill('SIGKILL')
        }
        figures.kills++
        const inFlight = replay(await readLog(log), model, figures)
        figures.inFlightAtKill += inFlight.length
        await checkAfterKill(ws, run, model, inFlight, figures)
      }
      console.log(
        `crash loop (seed ${seed}): ${JSON.stringify({
          ...figures,
          staleLocksLeft: figures.staleLocksLeft.size,
          manifestTempsLeft: figures.manifestTempsLeft.size,
          restoreTempsLeft: figures.restoreTempsLeft.size,
        })}`,
      )
      expect(figures.completedCalls).toBeGreaterThan(KILLS)
    } catch (error) {
      console.error(
        `crash loop failed with seed ${seed} (PATCH_BACKUP_CRASH_SEED=${seed} replays it)`,
      )
      throw error
    } finally {
      await ws.dispose()
    }
  })

  it('never leaves a truncated target when a restore is killed mid-write', async () => {
    const ws = await createWorkspace('restore-kill')
    const size = 24 * 1024 * 1024
    const file = 'node_modules/big/blob.bin'
    const original = bytesOf('original', size)
    const patched = bytesOf('patched', size)
    const target = path.join(ws.project, file)
    let caughtMidWrite = 0
    try {
      await mkdir(path.dirname(target), { recursive: true })
      await writeFile(target, original)
      await openStack(ws).backups.createBackup('big', file)
      const random = prng(fromEnv('PATCH_BACKUP_CRASH_SEED', 7))
      for (let attempt = 0; attempt < 5; attempt++) {
        const child = spawnChild('restore-loop.mjs', [
          ws.root,
          ws.project,
          'big',
          file,
          'patched',
          String(size),
        ])
        try {
          await child.waitFor((m) => m.restoring === 0)
          // Kill once the temp file beside the target holds a random share of the bytes.
          const share = 0.1 + random() * 0.8
          const deadline = Date.now() + 20_000
          while (Date.now() < deadline) {
            const names = await readdir(path.dirname(target))
            const temp = names.find((n) => n.endsWith('.tmp'))
            const tempSize = temp
              ? await stat(path.join(path.dirname(target), temp)).then(
                  (s) => s.size,
                  () => 0,
                )
              : 0
            if (tempSize >= share * size) break
            await sleep(1)
          }
        } finally {
          await child.kill('SIGKILL')
        }
        const names = await readdir(path.dirname(target))
        const temps = names.filter((n) => n.endsWith('.tmp'))
        for (const temp of temps) {
          const tempSize = (await stat(path.join(path.dirname(target), temp))).size
          if (tempSize < size) caughtMidWrite++
        }
        const now = await readFile(target)
        expect(now.length).toBe(size)
        expect(now.equals(original) || now.equals(patched)).toBe(true)
        // Clear the leftovers so the next attempt's temp file is the only one.
        for (const temp of temps) await writeFile(path.join(path.dirname(target), temp), '')
        for (const temp of temps) {
          const { rm } = await import('node:fs/promises')
          await rm(path.join(path.dirname(target), temp))
        }
      }
      console.log(`restore killed mid-write ${caughtMidWrite} of 5 times; target always whole`)
      expect(caughtMidWrite).toBeGreaterThanOrEqual(3)
    } finally {
      await ws.dispose()
    }
  })
})
