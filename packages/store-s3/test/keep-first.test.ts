import { type ChildProcess, spawn } from 'node:child_process'
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import type { PatchManifest } from '@patch-backup/core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createS3ManifestRepository, openS3Repository } from '../src/index.js'
import { type S3TestServer, startS3Server } from './server.js'

// Keep-first between machines, each its own process: the winner is decided by the patch's lock,
// not by how fast a machine's requests are; and what is left to timing (a holder that stalls
// past the lock's lease) is refused rather than applied.
const machineScript = fileURLToPath(new URL('./fixtures/keep-first-machine.mjs', import.meta.url))
const stalledScript = fileURLToPath(new URL('./fixtures/stalled-holder.mjs', import.meta.url))

let server: S3TestServer
let work: string
beforeAll(async () => {
  server = await startS3Server()
  work = await mkdtemp(path.join(os.tmpdir(), 'pb-s3-keep-first-'))
})
afterAll(async () => {
  await server?.stop()
  if (work) await rm(work, { recursive: true, force: true })
})

/** Spawns a fixture; `onLine` sees each stdout line as it comes; resolves every line at exit. */
function start(script: string, args: string[], home: string, onLine?: (line: string) => void) {
  const child: ChildProcess = spawn(process.execPath, [script, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, HOME: home, PATCH_BACKUP_DIR: path.join(home, '.socket') },
  })
  const lines: string[] = []
  let pending = ''
  let stderr = ''
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    pending += chunk
    const all = pending.split('\n')
    pending = all.pop() ?? ''
    for (const line of all) {
      lines.push(line)
      onLine?.(line)
    }
  })
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk
  })
  return new Promise<string[]>((resolve, reject) =>
    child.on('close', (code) =>
      code === 0 ? resolve(lines) : reject(new Error(`exit ${code}: ${stderr}`)),
    ),
  )
}

describe('keep-first between machines', () => {
  it('a first machine whose manifest write takes 2.5 s to land still wins on every machine', async () => {
    const prefix = 'slow-first'
    const file = 'node_modules/x/index.js'
    const machine = async (name: string, delayMs: number, onLine?: (line: string) => void) => {
      const home = path.join(work, prefix, name)
      await mkdir(path.join(home, 'project'), { recursive: true })
      const args = [path.join(home, 'project'), server.endpoint, server.bucket, prefix]
      const bytes = `pre-patch bytes as machine ${name} saw them`
      const lines = await start(
        machineScript,
        [...args, 'contested', file, bytes, String(delayMs)],
        home,
        onLine,
      )
      return JSON.parse(lines.at(-1) ?? '{}') as { integrity: string }
    }
    // B starts once A's manifest write is under way and held up: before the lock, B then read
    // no entry, wrote its own, waited out the 500 ms settle and reported itself the winner, and
    // A's earlier-named object landed after and won for everyone else.
    let startB: () => void = () => {}
    const aWriting = new Promise<void>((resolve) => {
      startB = resolve
    })
    const a = machine('a', 2500, (line) => {
      if (line === 'copying') startB()
    })
    await aWriting
    const b = machine('b', 0)
    const [fromA, fromB] = await Promise.all([a, b])
    const reader = openS3Repository({ client: server.client(), bucket: server.bucket, prefix })
    const winner = (await reader.manifests.get('contested'))?.files[file]?.integrity
    expect(winner).toBeDefined()
    expect({ a: fromA.integrity, b: fromB.integrity }).toEqual({ a: winner, b: winner })
  })

  it('a holder that stalls past lockStaleMs is taken over, and writes nothing once it wakes', async () => {
    const prefix = 'stalled'
    const home = path.join(work, prefix, 'a')
    await mkdir(home, { recursive: true })
    let locked: () => void = () => {}
    const aLocked = new Promise<void>((resolve) => {
      locked = resolve
    })
    const staleMs = 1500
    const a = start(
      stalledScript,
      [server.endpoint, server.bucket, prefix, 'p', String(staleMs), '6000'],
      home,
      (line) => {
        if (line === 'locked') locked()
      },
    )
    await aLocked
    // Another machine, same lease: it waits for A's lock to go stale (not for A to wake up),
    // then records its file.
    const b = createS3ManifestRepository({
      client: server.client(),
      bucket: server.bucket,
      prefix,
      lockStaleMs: staleMs,
    })
    let aDone = false
    const aOutcome = a.then((lines) => {
      aDone = true
      return JSON.parse(lines.at(-1) ?? '{}') as { code: string }
    })
    await b.update('p', (current: PatchManifest | undefined) => ({
      uuid: 'p',
      patchedAt: current?.patchedAt ?? '2025-01-14T12:00:00.000Z',
      files: {
        ...current?.files,
        'taken-over.js': {
          integrity: 'sha256-b',
          size: 1,
          backedUpAt: '2025-01-14T12:00:00.000Z',
          originalPath: 'taken-over.js',
        },
      },
    }))
    expect(aDone).toBe(false)
    // A wakes, finds its lease lapsed, and does not write: LOCK_COMPROMISED.
    await expect(aOutcome).resolves.toEqual({ code: 'LOCK_COMPROMISED' })
    const files = Object.keys((await b.get('p'))?.files ?? {})
    expect(files).toEqual(['taken-over.js'])
  })
})
