import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { ManifestRepository, PatchBackups } from '../src/index.js'
import { content, createPolicyProject, DAY, type PolicyProject } from './policy-project.js'

let p: PolicyProject
let backups: PatchBackups

/** Patch `uuid` created now, with files of the given sizes (content unique to uuid/file). */
async function patch(
  uuid: string,
  sizes: Record<string, number>,
  shared: Record<string, string> = {},
) {
  for (const [file, size] of Object.entries(sizes))
    await p.write(`${uuid}/${file}`, content(`${uuid}/${file}`, size))
  for (const [file, text] of Object.entries(shared)) await p.write(`${uuid}/${file}`, text)
  const result = await backups.createBackups(
    uuid,
    [...Object.keys(sizes), ...Object.keys(shared)].map((f) => `${uuid}/${f}`),
  )
  expect(result.failed).toEqual([])
}

beforeEach(async () => {
  p = await createPolicyProject()
  backups = p.open()
})
afterEach(() => p.dispose())

describe('prune', () => {
  it('removes patches older than olderThan by patchedAt, against the service clock', async () => {
    await patch('old', { a: 100 })
    p.clock.advance(10 * DAY)
    await patch('mid', { a: 200 })
    p.clock.advance(10 * DAY)
    await patch('new', { a: 300 })
    const result = await backups.prune({ olderThan: 15 * DAY })
    expect(result.removed.map((r) => [r.uuid, r.reason, r.bytes])).toEqual([
      ['old', 'older-than', 100],
    ])
    expect(result).toMatchObject({
      dryRun: false,
      reclaimedBytes: 100,
      remainingPatches: 2,
      remainingBytes: 500,
    })
    expect(await backups.listAllPatches()).toEqual(['mid', 'new'])
    expect((await p.keys()).some((k) => k.includes(':old:'))).toBe(false)
    expect(p.store.blobCount).toBe(2)
  })

  it('counts shared bytes once, and only when no remaining patch uses them', async () => {
    const shared = content('shared', 1000)
    await patch('p1', { own: 10 }, { lib: shared })
    p.clock.advance(DAY)
    await patch('p2', { own: 20 }, { lib: shared })
    p.clock.advance(DAY)
    await patch('p3', { own: 40 })
    // p1 and p2 go: the shared 1000 bytes are freed once, credited to the later of the two.
    const result = await backups.prune({ olderThan: 0.5 * DAY, keepLast: 1 })
    expect(result.removed.map((r) => [r.uuid, r.bytes])).toEqual([
      ['p1', 10],
      ['p2', 1020],
    ])
    expect(result.reclaimedBytes).toBe(1030)
    expect(result.remainingBytes).toBe(40)
  })

  it('does not count bytes a remaining patch still uses', async () => {
    const shared = content('shared', 1000)
    await patch('p1', { own: 10 }, { lib: shared })
    p.clock.advance(2 * DAY)
    await patch('p2', { own: 20 }, { lib: shared })
    const result = await backups.prune({ olderThan: DAY })
    expect(result.removed.map((r) => [r.uuid, r.bytes])).toEqual([['p1', 10]])
    expect(await backups.restoreAllBackups('p2')).toMatchObject({ failed: [] })
  })

  it('keepLast protects the newest patches from every rule, and alone keeps only them', async () => {
    for (const uuid of ['a', 'b', 'c', 'd']) {
      await patch(uuid, { f: 100 })
      p.clock.advance(DAY)
    }
    const protectedRun = await backups.prune({ olderThan: 0, keepLast: 3 })
    expect(protectedRun.removed.map((r) => r.uuid)).toEqual(['a'])
    const alone = await backups.prune({ keepLast: 1 })
    expect(alone.removed.map((r) => [r.uuid, r.reason])).toEqual([
      ['b', 'keep-last'],
      ['c', 'keep-last'],
    ])
    expect(await backups.listAllPatches()).toEqual(['d'])
  })

  it('maxPatchBytes removes every patch bigger than it', async () => {
    await patch('small', { f: 100 })
    p.clock.advance(DAY)
    await patch('big', { f: 600, g: 600 })
    const result = await backups.prune({ maxPatchBytes: 1000 })
    expect(result.removed.map((r) => [r.uuid, r.reason, r.bytes])).toEqual([
      ['big', 'max-patch-bytes', 1200],
    ])
  })

  it('maxTotalBytes removes the oldest patches until the rest fit', async () => {
    for (const uuid of ['a', 'b', 'c', 'd']) {
      await patch(uuid, { f: 1000 })
      p.clock.advance(DAY)
    }
    const result = await backups.prune({ maxTotalBytes: 2500 })
    expect(result.removed.map((r) => [r.uuid, r.reason])).toEqual([
      ['a', 'max-total-bytes'],
      ['b', 'max-total-bytes'],
    ])
    expect(result.remainingBytes).toBe(2000)
  })

  it('dryRun reports the same and removes nothing', async () => {
    await patch('old', { f: 100 })
    p.clock.advance(2 * DAY)
    await patch('new', { f: 100 })
    const keys = await p.keys()
    const dry = await backups.prune({ olderThan: DAY, dryRun: true })
    expect(dry).toMatchObject({
      dryRun: true,
      reclaimedBytes: 100,
      removed: [{ uuid: 'old', bytes: 100 }],
    })
    expect(await backups.listAllPatches()).toEqual(['new', 'old'])
    expect(await p.keys()).toEqual(keys)
    const real = await backups.prune({ olderThan: DAY })
    expect(real.removed).toEqual(dry.removed)
  })

  it('leaves an unreadable manifest and its bytes alone, and says so', async () => {
    await patch('bad', { f: 100 })
    p.clock.advance(2 * DAY)
    p.manifests.corrupt('bad')
    const result = await backups.prune({ olderThan: DAY })
    expect(result.removed).toEqual([])
    expect(result.skipped).toEqual([
      expect.objectContaining({ uuid: 'bad', code: 'MANIFEST_CORRUPT' }),
    ])
    expect(p.store.blobCount).toBe(1)
  })

  it('leaves a patch that changed after it was judged', async () => {
    await patch('old', { f: 100 })
    p.clock.advance(2 * DAY)
    // The first lock prune takes is of 'old': a backup adds a file just before it.
    let raced = false
    const manifests: ManifestRepository = {
      ...p.manifests,
      get: (uuid) => p.manifests.get(uuid),
      list: () => p.manifests.list(),
      delete: (uuid) => p.manifests.delete(uuid),
      update: (uuid, fn) => p.manifests.update(uuid, fn),
      async withLock(uuid, task) {
        if (!raced && uuid === 'old') {
          raced = true
          await p.manifests.update(
            uuid,
            (m) =>
              m && {
                ...m,
                files: {
                  ...m.files,
                  extra: { integrity: 'sha256-x', size: 1, backedUpAt: '', originalPath: 'extra' },
                },
              },
          )
        }
        return p.manifests.withLock(uuid, task)
      },
    }
    const result = await p.open({ manifests }).prune({ olderThan: DAY })
    expect(result.removed).toEqual([])
    expect(result.skipped).toEqual([
      expect.objectContaining({ uuid: 'old', code: 'PATCH_CHANGED' }),
    ])
    expect(await backups.listAllPatches()).toEqual(['old'])
  })

  it('refuses options with nothing to prune by, or bad numbers', async () => {
    await expect(backups.prune({})).rejects.toMatchObject({ code: 'INVALID_OPTIONS' })
    await expect(backups.prune({ olderThan: -1 })).rejects.toMatchObject({
      code: 'INVALID_OPTIONS',
    })
    await expect(backups.prune({ keepLast: 1.5 })).rejects.toMatchObject({
      code: 'INVALID_OPTIONS',
    })
  })
})
