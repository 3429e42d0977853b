import { type ChildProcess, spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { createPatchBackups } from '@patch-backup/core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { openS3Repository } from '../src/index.js'
import { type S3TestServer, startS3Server } from './server.js'

// Three "machines" back up the same files of one patch again and again while a fourth removes
// that patch in a loop (cleanup and prune in turn). Each is its own process with its own root and
// HOME, all through one s3rver bucket.
const machineScript = fileURLToPath(new URL('./fixtures/race-machine.mjs', import.meta.url))
const cleanerScript = fileURLToPath(new URL('./fixtures/race-cleaner.mjs', import.meta.url))
const MACHINES = 3
const FILES = 10
/** Runs of the cleaner that remove the patch, before the machines are stopped. */
const REMOVALS = Number(process.env.RACE_REMOVALS ?? 3)
/** However slow the machine: then the cleaner and the machines stop anyway. */
const MAX_MS = 90_000
const UUID = 'raced'
// The cleaner removes the patch once it lists all of them again: each file a machine stores
// again while the removal runs is then one the removal still has to remove, or has removed.
const MIN_FILES = MACHINES * FILES

interface Backup {
  machine: string
  path: string
  integrity: string
  start: number
  end: number
}
interface Removal {
  op: 'cleanup' | 'prune'
  removed: boolean
  start: number
  end: number
  /** Entries found without their bytes just before this run. */
  broken: string[]
}

let server: S3TestServer
let work: string
beforeAll(async () => {
  server = await startS3Server()
  work = await mkdtemp(path.join(os.tmpdir(), 'pb-s3-race-'))
})
afterAll(async () => {
  await server?.stop()
  if (work) await rm(work, { recursive: true, force: true })
})

/** Spawns a fixture as its own "machine" (HOME, root) and collects the JSON lines it prints. */
function run<T>(script: string, args: string[], home: string, lines: T[]) {
  const child: ChildProcess = spawn(process.execPath, [script, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, HOME: home, PATCH_BACKUP_DIR: path.join(home, '.socket') },
  })
  let pending = ''
  let stderr = ''
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    pending += chunk
    const all = pending.split('\n')
    pending = all.pop() ?? ''
    for (const line of all) if (line) lines.push(JSON.parse(line) as T)
  })
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk
  })
  return new Promise<{ code: number | null; stderr: string }>((resolve) =>
    child.on('close', (code) => resolve({ code, stderr })),
  )
}

const sha256 = (bytes: Buffer) => `sha256-${createHash('sha256').update(bytes).digest('base64')}`

// About 20 s on two shared cores; more beside the other test files.
describe('cleanup and prune on one machine while others back up the same patch', {
  timeout: 180_000,
}, () => {
  it('never leave a completed backup listed without its bytes, nor drop one no removal came after', async () => {
    const prefix = 'race'
    const backups: Backup[] = []
    const removals: Removal[] = []
    const stop = path.join(work, 'stop')
    const machines = Array.from({ length: MACHINES }, async (_, m) => {
      const home = path.join(work, `m${m}`)
      const project = path.join(home, 'project')
      await mkdir(project, { recursive: true })
      const args = [project, server.endpoint, server.bucket, prefix, `m${m}`, UUID, String(FILES)]
      return run(machineScript, [...args, stop, String(MAX_MS)], home, backups)
    })
    const cleanerHome = path.join(work, 'cleaner')
    await mkdir(cleanerHome, { recursive: true })
    const cleaner = await run(
      cleanerScript,
      [
        server.endpoint,
        server.bucket,
        prefix,
        UUID,
        String(REMOVALS),
        String(MIN_FILES),
        String(MAX_MS),
      ],
      cleanerHome,
      removals,
    )
    // The machines go on until the cleaner is done; each finishes the backup it is in.
    await writeFile(stop, '')
    for (const exited of [...(await Promise.all(machines)), cleaner]) {
      expect(exited.code, exited.stderr).toBe(0)
    }
    const removedRuns = removals.filter((r) => r.removed)

    // A fifth machine reads what is left.
    const project = path.join(work, 'reader', 'project')
    await mkdir(project, { recursive: true })
    const reader = createPatchBackups({
      ...openS3Repository({ client: server.client(), bucket: server.bucket, prefix }),
      cwd: project,
    })
    const manifest = await reader.getPatchMetadata(UUID)
    const listed = manifest?.files ?? {}
    // Entries the cleaner found listed without their bytes before its runs.
    const problems: string[] = removals.flatMap((r) => r.broken)
    // Every entry left restores byte for byte: no removal freed the bytes of a backup that
    // re-created the patch while it was removing the patch's keys.
    for (const [file, entry] of Object.entries(listed)) {
      try {
        if (!(await reader.restoreBackup(UUID, file))) problems.push(`${file}: not restored`)
        else if (sha256(await readFile(path.join(project, file))) !== entry.integrity)
          problems.push(`${file}: restored bytes differ from ${entry.integrity}`)
      } catch (error) {
        problems.push(`${file}: ${(error as Error).message}`)
      }
    }
    // A completed backup is gone only if a removal of the patch ran after it: one that ended
    // after the backup started (the two hold the patch one after the other, so a removal that
    // took it after the backup's write must have ended after the backup began).
    for (const b of backups) {
      if (listed[b.path]) {
        if (listed[b.path]?.integrity !== b.integrity)
          problems.push(
            `${b.path}: listed as ${listed[b.path]?.integrity}, backed up as ${b.integrity}`,
          )
        continue
      }
      if (!removedRuns.some((r) => r.end > b.start))
        problems.push(`${b.path}: backed up at ${b.start}-${b.end}, no removal after it, yet gone`)
    }
    expect(problems).toEqual([])
    // The race was run: the patch was removed again and again while the machines backed it up.
    expect(removedRuns.length).toBe(REMOVALS)
    expect(backups.length).toBeGreaterThanOrEqual(MACHINES * FILES * 2)
    console.log(
      `race: ${backups.length} backups by ${MACHINES} machines, ${removedRuns.length} of ${removals.length} removals took the patch, ${Object.keys(listed).length} files left`,
    )
  })
})
