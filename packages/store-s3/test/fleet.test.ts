import { type ChildProcess, spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { createPatchBackups } from '@patch-backup/core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { openS3Repository } from '../src/index.js'
import { type S3TestServer, startS3Server } from './server.js'

// Four "machines" (child processes, each with its own project, root and HOME) back up through
// one s3rver bucket; a fifth restores everything any of them reported as done.
const script = fileURLToPath(new URL('./fixtures/fleet-machine.mjs', import.meta.url))
const MACHINES = 4
const COUNT = Number(process.env.FLEET_COUNT ?? 50)

interface Done {
  uuid: string
  path: string
  integrity: string
}

let server: S3TestServer
let work: string
beforeAll(async () => {
  server = await startS3Server()
  work = await mkdtemp(path.join(os.tmpdir(), 'pb-s3-fleet-'))
})
afterAll(async () => {
  await server?.stop()
  if (work) await rm(work, { recursive: true, force: true })
})

/** Starts one machine; `done` collects the backups it reports, `exited` its end. */
async function startMachine(prefix: string, machine: string, done: Done[]) {
  const home = path.join(work, prefix, machine)
  const project = path.join(home, 'project')
  await mkdir(project, { recursive: true })
  const child: ChildProcess = spawn(
    process.execPath,
    [script, project, server.endpoint, server.bucket, prefix, machine, String(COUNT)],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, HOME: home, PATCH_BACKUP_DIR: path.join(home, '.socket') },
    },
  )
  let pending = ''
  let stderr = ''
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    pending += chunk
    const lines = pending.split('\n')
    pending = lines.pop() ?? ''
    for (const line of lines) if (line) done.push(JSON.parse(line) as Done)
  })
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk
  })
  const exited = new Promise<{ code: number | null; signal: string | null; stderr: string }>(
    (resolve) => child.on('close', (code, signal) => resolve({ code, signal, stderr })),
  )
  return { child, exited }
}

const sha256 = (bytes: Buffer) => `sha256-${createHash('sha256').update(bytes).digest('base64')}`

/** From a fifth root: every reported backup is listed, recorded as reported, and restores byte for byte. */
async function checkFromFifthMachine(prefix: string, done: Done[]) {
  const project = path.join(work, prefix, 'fifth', 'project')
  await mkdir(project, { recursive: true })
  const backups = createPatchBackups({
    ...openS3Repository({ client: server.client(), bucket: server.bucket, prefix }),
    cwd: project,
  })
  // Keep-first decided the same everywhere: every machine got the same entry for a contested file.
  const winners = new Map<string, string>()
  for (const d of done) {
    const key = `${d.uuid}\0${d.path}`
    expect(winners.get(key) ?? d.integrity, key).toBe(d.integrity)
    winners.set(key, d.integrity)
  }
  const patches = new Set(await backups.listAllPatches())
  const listed = new Map<string, Set<string>>()
  for (const uuid of new Set(done.map((d) => d.uuid))) {
    expect(patches.has(uuid), uuid).toBe(true)
    listed.set(uuid, new Set(await backups.listBackups(uuid)))
  }
  for (const [key, integrity] of winners) {
    const [uuid = '', file = ''] = key.split('\0')
    expect(listed.get(uuid)?.has(file), key).toBe(true)
    expect((await backups.getBackupInfo(uuid, file))?.integrity, key).toBe(integrity)
    await expect(backups.restoreBackup(uuid, file)).resolves.toBe(true)
    expect(sha256(await readFile(path.join(project, file))), key).toBe(integrity)
  }
  return winners.size
}

// About 40 s each on their own on two shared cores; more beside the other test files.
describe('a fleet of machines on one bucket', { timeout: 180_000 }, () => {
  it(`${MACHINES} machines x ${COUNT} backups on a shared patch + ${COUNT} on their own: all restore from a fifth`, async () => {
    const prefix = 'fleet'
    const done: Done[] = []
    const started = performance.now()
    const machines = await Promise.all(
      Array.from({ length: MACHINES }, (_, m) => startMachine(prefix, `m${m}`, done)),
    )
    for (const { exited } of machines) {
      const { code, stderr } = await exited
      expect(code, stderr).toBe(0)
    }
    const wrote = performance.now()
    expect(done).toHaveLength(MACHINES * COUNT * 2)
    const files = await checkFromFifthMachine(prefix, done)
    console.log(
      `fleet: ${done.length} backups by ${MACHINES} processes in ${Math.round(wrote - started)} ms, ${files} distinct files checked in ${Math.round(performance.now() - wrote)} ms`,
    )
  })

  it('a machine killed with SIGKILL at random moments loses no backup it completed', async () => {
    const prefix = 'fleet-kill'
    const done: Done[] = []
    const others = await Promise.all(
      Array.from({ length: MACHINES - 1 }, (_, m) => startMachine(prefix, `m${m + 1}`, done)),
    )
    let kills = 0
    // The victim starts over after each kill (same files, same bytes): keep-first keeps what it
    // completed before, and its redone backups report those same entries.
    for (let round = 0; round < 4; round++) {
      const victim = await startMachine(prefix, 'm0', done)
      const timer = setTimeout(() => victim.child.kill('SIGKILL'), 2000 + Math.random() * 3000)
      const { signal } = await victim.exited
      clearTimeout(timer)
      if (signal === 'SIGKILL') kills++
    }
    for (const { exited } of others) {
      const { code, stderr } = await exited
      expect(code, stderr).toBe(0)
    }
    expect(kills).toBeGreaterThan(0)
    expect(done.filter((d) => d.path.includes('m0')).length).toBeGreaterThan(0)
    await checkFromFifthMachine(prefix, done)
  })
})
