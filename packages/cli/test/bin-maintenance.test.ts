import path from 'node:path'
import { createCacacheStore } from '@patch-backup/store-cacache'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { json, type Sandbox, sandbox } from './helpers.js'
import { cacheFixtureHooks, manifestFixtureHooks } from './hooks.js'

const A = 'node_modules/a/index.js'
const B = 'node_modules/b/index.js'

interface VerifyJson {
  patches: number
  files: number
  ok: number
  problems: { uuid: string; path?: string; code: string; message: string }[]
}

let box: Sandbox
let integrity: Record<string, string>
beforeEach(async () => {
  box = await sandbox({ [A]: 'alpha\n', [B]: 'beta\n' })
  const r = await box.cli(['backup', 'p-1', A, B, '--json'])
  const files = json<{ files: Record<string, { integrity: string }> }>(r).files
  integrity = Object.fromEntries(Object.entries(files).map(([k, v]) => [k, v.integrity]))
  await box.cli(['backup', 'p-2', B])
})
afterEach(() => box.remove())

describe('verify', () => {
  it('re-hashes every backup and exits 0 when all are sound', async () => {
    const r = await box.cli(['verify'])
    expect(r.code).toBe(0)
    expect(r.stdout).toBe('Verified 3 files in 2 patches: 3 ok\n')
    expect(json(await box.cli(['verify', 'p-1', '--json']))).toEqual({
      patches: 1,
      files: 2,
      ok: 2,
      problems: [],
    })
  })

  it('exits 1 naming a corrupt file', async () => {
    await cacheFixtureHooks(box.cache).corrupt(integrity[A] as string)
    const r = await box.cli(['verify'])
    expect(r.code).toBe(1)
    expect(r.stdout).toBe('Verified 3 files in 2 patches: 2 ok, 1 problem\n')
    expect(r.stderr).toMatch(/p-1\s+node_modules\/a\/index\.js\s+INTEGRITY_MISMATCH/)
    const j = await box.cli(['verify', '--json'])
    expect(j.code).toBe(1)
    expect(json<VerifyJson>(j).problems).toEqual([
      {
        uuid: 'p-1',
        path: A,
        integrity: expect.stringMatching(/^sha256-/),
        code: 'INTEGRITY_MISMATCH',
        message: expect.any(String),
      },
    ])
    // Only p-2 asked: its bytes are sound.
    expect((await box.cli(['verify', 'p-2'])).code).toBe(0)
  })

  it('exits 1 naming a file whose bytes are gone', async () => {
    await cacheFixtureHooks(box.cache).lose(integrity[A] as string)
    const j = await box.cli(['verify', 'p-1', '--json'])
    expect(j.code).toBe(1)
    expect(json<VerifyJson>(j).problems).toMatchObject([{ path: A, code: 'BLOB_MISSING' }])
  })

  it('prints problems even with --quiet', async () => {
    await cacheFixtureHooks(box.cache).corrupt(integrity[B] as string)
    const r = await box.cli(['verify', '--quiet'])
    expect(r.code).toBe(1)
    expect(r.stdout).toBe('')
    expect(r.stderr).toMatch(/node_modules\/b\/index\.js\s+INTEGRITY_MISMATCH/)
  })

  it('exits 1 for a manifest it cannot read, in verify and list', async () => {
    await manifestFixtureHooks(path.join(box.store, '_patches', 'manifests')).corrupt('p-2')
    const j = await box.cli(['verify', '--json'])
    expect(j.code).toBe(1)
    expect(json<VerifyJson>(j).problems).toEqual([
      { uuid: 'p-2', code: 'MANIFEST_CORRUPT', message: expect.any(String) },
    ])
    const list = await box.cli(['list'])
    expect(list.code).toBe(1)
    expect(list.stdout).toMatch(/^p-2\s+-\s+-\s+MANIFEST_CORRUPT$/m)
    expect(list.stderr).toMatch(/^1 patch cannot be read:\n\s+p-2\s+MANIFEST_CORRUPT/)
  })

  it('exits 1 for an unknown patch', async () => {
    const j = await box.cli(['verify', 'p-9', '--json'])
    expect(j.code).toBe(1)
    expect(json(j)).toMatchObject({ error: { code: 'PATCH_NOT_FOUND' } })
  })
})

describe('gc', () => {
  it('frees bytes no manifest references and reports them', async () => {
    // Bytes a crashed backup left behind: a store key no manifest records.
    const orphan = Buffer.alloc(5000, 7)
    await createCacacheStore({ path: box.cache }).put(
      'socket:patch:backup:ghost:0123456789abcdef',
      orphan,
    )
    const r = await box.cli(['gc'])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toMatch(/^Reclaimed 4\.9 KiB: 1 blob and 1 key no patch referenced\n$/)
    const again = await box.cli(['gc', '--json'])
    expect(again.code).toBe(0)
    expect(json(again)).toEqual({ removedKeys: 0, removedBlobs: 0, freedBytes: 0 })
    expect((await box.cli(['gc'])).stdout).toMatch(/^Nothing to reclaim/)
    // What patches use is still there.
    expect((await box.cli(['verify'])).code).toBe(0)
  })
})

describe('cleanup', () => {
  it('removes patches and keeps bytes another patch needs', async () => {
    const r = await box.cli(['cleanup', 'p-1'])
    expect(r.code).toBe(0)
    expect(r.stdout).toBe('Removed patch p-1\n')
    expect(await cacheFixtureHooks(box.cache).holdsContent(integrity[A] as string)).toBe(false)
    expect(await cacheFixtureHooks(box.cache).holdsContent(integrity[B] as string)).toBe(true)
    expect((await box.cli(['verify'])).code).toBe(0)
  })

  it('removes several at once; one it does not have fails the command before any is removed', async () => {
    const r = await box.cli(['cleanup', 'p-1', 'p-9', 'p-2', '--json'])
    expect(r.code).toBe(1)
    expect(json(r)).toMatchObject({ error: { code: 'PATCH_NOT_FOUND' } })
    expect((await box.cli(['list', 'p-1'])).code).toBe(0)
    const human = await box.cli(['cleanup', 'p-9'])
    expect(human.code).toBe(1)
    expect(human.stderr).toMatch(
      /^error: No patch p-9 in .*, so nothing was removed\. Run 'patch-backup list'/,
    )
    const both = await box.cli(['cleanup', 'p-1', 'p-2', '--json'])
    expect(json(both)).toEqual({ removed: ['p-1', 'p-2'], notFound: [], errors: [] })
    expect(json(await box.cli(['list', '--json']))).toMatchObject({ patches: [] })
  })

  it('checks every uuid before removing any', async () => {
    const r = await box.cli(['cleanup', 'p-1', '../bad', '--json'])
    expect(r.code).toBe(2)
    expect(json(r)).toMatchObject({ error: { code: 'INVALID_UUID' } })
    expect((await box.cli(['list', 'p-1'])).code).toBe(0)
  })
})
