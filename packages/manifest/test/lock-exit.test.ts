// A holder that stalled past the lease finds its lock lost (LOCK_COMPROMISED) and exits with
// process.exit. proper-lockfile's exit hook removes every lock it still counts as held, without
// looking whose directory it is by then: it removed the lock of the process that took over, while
// that process held it (found by review; lock.ts now gives proper-lockfile an fs whose rmdir
// leaves a directory this process did not make).
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { expect, it } from 'vitest'

const dist = fileURLToPath(new URL('../dist/index.js', import.meta.url))

const holder = (dir: string) => `
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
const { createJsonManifestRepository } = await import(${JSON.stringify(dist)})
const repo = createJsonManifestRepository({ dir: ${JSON.stringify(dir)}, lockStaleMs: 2000 })
await repo.withLock('p', async (tx) => {
  writeFileSync(join(${JSON.stringify(dir)}, 'go'), '')
  const until = Date.now() + 3500
  while (Date.now() < until) {} // stalled past the lease
  try { await tx.update(() => ({ uuid: 'p', patchedAt: 't', files: {} })) } catch (e) {
    console.log(e.code)
    process.exit(1)
  }
})`

const taker = (dir: string) => `
import { existsSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
const { createJsonManifestRepository } = await import(${JSON.stringify(dist)})
const repo = createJsonManifestRepository({ dir: ${JSON.stringify(dir)}, lockStaleMs: 2000 })
while (!existsSync(join(${JSON.stringify(dir)}, 'go'))) await sleep(5)
await repo.withLock('p', async (tx) => {
  const lock = repo.lockPath('p')
  const mine = statSync(lock).ino
  let removed = false
  const since = Date.now()
  while (Date.now() - since < 4000) {
    try { if (statSync(lock).ino !== mine) removed = true } catch { removed = true }
    await sleep(10)
  }
  let verify = 'ok'
  try { await tx.verify() } catch (e) { verify = e.code }
  console.log(JSON.stringify({ removed, verify }))
})`

function run(source: string): Promise<string> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', source], {
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    let out = ''
    child.stdout.on('data', (d) => {
      out += d
    })
    child.on('close', () => resolve(out.trim()))
  })
}

it('a holder that lost its lock and exits does not remove the lock of the process that took it over', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pb-review-exit-'))
  try {
    const [held, took] = await Promise.all([run(holder(dir)), run(taker(dir))])
    expect(held).toBe('LOCK_COMPROMISED') // the stalled holder noticed
    expect(JSON.parse(took)).toEqual({ removed: false, verify: 'ok' })
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}, 30_000)
