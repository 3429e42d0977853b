import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { runNode } from '@patch-backup/conformance'
import { isPatchBackupError, RETENTION_STAMP } from '@patch-backup/core'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createFilePolicyState, loadPolicyConfig } from '../src/index.js'
import { assertBuilt, tempRoot } from './helpers.js'

const RETENTION_WORKER = fileURLToPath(new URL('./fixtures/retention-worker.mjs', import.meta.url))

let t: Awaited<ReturnType<typeof tempRoot>>
beforeEach(async () => {
  t = await tempRoot()
})
afterEach(() => t.dispose())

describe('createFilePolicyState', () => {
  it('keeps stamps in files, replaced whole', async () => {
    const state = createFilePolicyState({ dir: join(t.root, 'state') })
    await expect(state.readStamp('retention')).resolves.toBeUndefined()
    const at = new Date('2025-03-01T10:00:00.000Z')
    await state.writeStamp('retention', at)
    await expect(state.readStamp('retention')).resolves.toEqual(at)
    expect(JSON.parse(await readFile(state.stampPath('retention'), 'utf8'))).toEqual({
      at: at.toISOString(),
    })
    await expect(
      createFilePolicyState({ dir: join(t.root, 'state') }).readStamp('retention'),
    ).resolves.toEqual(at)
  })

  it('reads a damaged stamp as never run', async () => {
    const state = createFilePolicyState({ dir: join(t.root, 'state') })
    await mkdir(state.dir, { recursive: true })
    await writeFile(state.stampPath('retention'), '{"at": "not a da')
    await expect(state.readStamp('retention')).resolves.toBeUndefined()
  })

  it('gives a run lock to one holder at a time, without waiting', async () => {
    const a = createFilePolicyState({ dir: join(t.root, 'state') })
    const b = createFilePolicyState({ dir: join(t.root, 'state') })
    const release = await a.tryLock?.('retention')
    expect(release).toBeTypeOf('function')
    await expect(b.tryLock?.('retention')).resolves.toBeUndefined()
    await release?.()
    const again = await b.tryLock?.('retention')
    expect(again).toBeTypeOf('function')
    await again?.()
  })

  it('refuses stamp names that are not plain words', async () => {
    const state = createFilePolicyState({ dir: join(t.root, 'state') })
    await expect(state.readStamp('../x')).rejects.toMatchObject({ code: 'INVALID_OPTIONS' })
  })
})

describe('automatic retention across processes', () => {
  async function child(uuid: string, startAt: number): Promise<{ runs: [number, number][] }> {
    const { code, stdout, stderr } = await runNode(RETENTION_WORKER, [
      t.root,
      uuid,
      String(startAt),
    ])
    if (code !== 0) throw new Error(`exit ${code}: ${stderr}`)
    return JSON.parse(stdout)
  }

  it('runs once per interval among racing processes, never two at once', {
    timeout: 60_000,
  }, async () => {
    assertBuilt()
    const startAt = Date.now() + 1500
    const results = await Promise.all(['p1', 'p2', 'p3', 'p4'].map((uuid) => child(uuid, startAt)))
    const runs = results.flatMap((r) => r.runs)
    expect(runs).toHaveLength(1)
    const stamp = await createFilePolicyState({ dir: join(t.root, '_patches', 'state') }).readStamp(
      RETENTION_STAMP,
    )
    expect(stamp).toBeInstanceOf(Date)
    // Within the interval, a later process does not run it again.
    const later = await child('p5', Date.now())
    expect(later.runs).toEqual([])
  })
})

describe('loadPolicyConfig', () => {
  it('reads <root>/patch-backup.config.json, resolving paths against the root', async () => {
    await writeFile(
      join(t.root, 'patch-backup.config.json'),
      JSON.stringify({
        retention: { olderThan: '30d' },
        encryption: { keySource: 'file', keyFile: 'keys/k' },
      }),
    )
    await expect(loadPolicyConfig(t.root)).resolves.toEqual({
      retention: { olderThan: 30 * 24 * 60 * 60 * 1000 },
      encryption: { keySource: 'file', keyFile: join(t.root, 'keys', 'k') },
    })
  })

  it('resolves undefined without a config file', async () => {
    await expect(loadPolicyConfig(t.root)).resolves.toBeUndefined()
  })

  it('fails with INVALID_CONFIG naming the file for bad JSON or a bad field', async () => {
    const file = join(t.root, 'patch-backup.config.json')
    await writeFile(file, '{ "retention": ')
    const bad = await loadPolicyConfig(t.root).catch((e: unknown) => e)
    expect(isPatchBackupError(bad, 'INVALID_CONFIG')).toBe(true)
    expect((bad as Error).message).toContain(file)
    await writeFile(file, JSON.stringify({ limits: { maxTotalBytes: 'lots' } }))
    const field = await loadPolicyConfig(t.root).catch((e: unknown) => e)
    expect(isPatchBackupError(field, 'INVALID_CONFIG')).toBe(true)
    expect((field as Error).message).toContain('limits.maxTotalBytes')
  })
})
