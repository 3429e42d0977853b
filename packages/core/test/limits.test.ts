import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { isPatchBackupError, withCompression } from '../src/index.js'
import { content, createPolicyProject, DAY, type PolicyProject } from './policy-project.js'

let p: PolicyProject
beforeEach(async () => {
  p = await createPolicyProject()
})
afterEach(() => p.dispose())

async function files(prefix: string, sizes: number[]): Promise<string[]> {
  const paths = sizes.map((_, i) => `${prefix}/f${i}.js`)
  for (const [i, size] of sizes.entries())
    await p.write(paths[i] as string, content(`${prefix}${i}`, size))
  return paths
}

describe('limits', () => {
  it('refuses a file over maxPatchBytes with QUOTA_EXCEEDED naming the numbers, and writes nothing', async () => {
    const backups = p.open({ limits: { maxPatchBytes: 1500 } })
    const [a, b] = await files('x', [1000, 600])
    await backups.createBackup('p1', a as string)
    const keys = await p.keys()
    const blobs = p.store.blobCount
    const before = await p.manifests.get('p1')
    const failure = await backups.createBackup('p1', b as string).catch((e: unknown) => e)
    expect(isPatchBackupError(failure, 'QUOTA_EXCEEDED')).toBe(true)
    const message = (failure as Error).message
    expect(message).toContain('600 bytes')
    expect(message).toContain('1600 bytes')
    expect(message).toContain('1500 bytes')
    expect(message).toContain('maxPatchBytes')
    expect(await p.keys()).toEqual(keys)
    expect(p.store.blobCount).toBe(blobs)
    expect(await p.manifests.get('p1')).toEqual(before)
    // Another patch has its own allowance.
    await expect(
      p.open({ limits: { maxPatchBytes: 1500 } }).createBackup('p2', b as string),
    ).resolves.toMatchObject({ size: 600 })
  })

  it('counts maxTotalBytes over every patch, each distinct content once', async () => {
    const backups = p.open({ limits: { maxTotalBytes: 3000 } })
    const [a, b] = await files('x', [1000, 1000])
    await backups.createBackup('p1', a as string)
    await backups.createBackup('p2', b as string)
    // The same bytes as p1's in a third patch: the check before the write counts them (it cannot
    // know yet), and they fit; once stored they are known to be shared and count once.
    await p.write('y/same.js', content('x0', 1000))
    await backups.createBackup('p3', 'y/same.js')
    await p.write('y/next.js', content('n', 900))
    await expect(backups.createBackup('p3', 'y/next.js')).resolves.toMatchObject({ size: 900 })
    await p.write('y/over.js', content('o', 200))
    const refused = await backups.createBackup('p4', 'y/over.js').catch((e: unknown) => e)
    expect(isPatchBackupError(refused, 'QUOTA_EXCEEDED')).toBe(true)
    expect((refused as Error).message).toContain('3100 bytes')
    expect((refused as Error).message).toContain('maxTotalBytes')
  })

  it('refuses a whole batch that would not fit, writing none of it', async () => {
    const backups = p.open({ limits: { maxPatchBytes: 2500 } })
    const paths = await files('batch', [1000, 1000, 1000])
    const result = await backups.createBackups('p1', paths)
    expect(result.backedUp).toEqual([])
    expect(result.failed.sort()).toEqual([...paths].sort())
    expect(result.errors.every((e) => e.code === 'QUOTA_EXCEEDED')).toBe(true)
    expect(p.store.blobCount).toBe(0)
    expect(await p.keys()).toEqual([])
    expect(await p.manifests.get('p1')).toBeUndefined()
    await expect(backups.createBackups('p1', paths.slice(0, 2))).resolves.toMatchObject({
      failed: [],
    })
  })

  it("with onExceeded 'prune-oldest' removes the oldest patches (never the current one) to make room", async () => {
    const backups = p.open({ limits: { maxTotalBytes: 3000, onExceeded: 'prune-oldest' } })
    for (const uuid of ['a', 'b', 'c']) {
      const [file] = await files(uuid, [1000])
      await backups.createBackup(uuid, file as string)
      p.clock.advance(DAY)
    }
    const [next] = await files('c2', [1000])
    await backups.createBackup('c', next as string)
    expect(await backups.listAllPatches()).toEqual(['b', 'c'])
    expect(await backups.getBackupInfo('c', next as string)).toMatchObject({ size: 1000 })
    // Removing b would not make room for 2000 more (c alone holds 2000): refused, b kept.
    const [huge] = await files('c3', [2000])
    const failure = await backups.createBackup('c', huge as string).catch((e: unknown) => e)
    expect(isPatchBackupError(failure, 'QUOTA_EXCEEDED')).toBe(true)
    expect((failure as Error).message).toContain('even after removing the oldest patches')
    expect(await backups.listAllPatches()).toEqual(['b', 'c'])
    // 1000 more fits once b goes.
    const [fits] = await files('c4', [1000])
    await backups.createBackup('c', fits as string)
    expect(await backups.listAllPatches()).toEqual(['c'])
  })

  it('gives the room back after cleanup and after a prune', async () => {
    const backups = p.open({ limits: { maxTotalBytes: 1500 } })
    const [a, b] = await files('x', [1000, 1000])
    await backups.createBackup('p1', a as string)
    await expect(backups.createBackup('p2', b as string)).rejects.toMatchObject({
      code: 'QUOTA_EXCEEDED',
    })
    await backups.cleanupBackups('p1')
    await backups.createBackup('p2', b as string)
    p.clock.advance(2 * DAY)
    await backups.prune({ olderThan: DAY })
    await expect(backups.createBackup('p3', a as string)).resolves.toMatchObject({ size: 1000 })
  })

  it('re-reads the manifests before refusing, so room freed by another process counts', async () => {
    const mine = p.open({ limits: { maxTotalBytes: 1500 } })
    const theirs = p.open()
    const [a, b] = await files('x', [1000, 1000])
    await mine.createBackup('p1', a as string)
    await theirs.cleanupBackups('p1') // behind the cache's back
    await expect(mine.createBackup('p2', b as string)).resolves.toMatchObject({ size: 1000 })
  })

  it('counts original sizes and records storedSize under a compressing store', async () => {
    const store = withCompression(p.store, { algorithm: 'gzip' })
    const backups = p.open({ store, limits: { maxPatchBytes: 5000 } })
    await p.write('z/big.js', 'x'.repeat(6000))
    await expect(backups.createBackup('p1', 'z/big.js')).rejects.toMatchObject({
      code: 'QUOTA_EXCEEDED',
    })
    await p.write('z/ok.js', 'y'.repeat(4000))
    const info = await backups.createBackup('p1', 'z/ok.js')
    expect(info.size).toBe(4000)
    expect(info.storedSize).toBeLessThan(200)
    expect((await backups.getBackupInfo('p1', 'z/ok.js'))?.storedSize).toBe(info.storedSize)
  })

  it('refuses bad limits at construction', () => {
    expect(() => p.open({ limits: { maxTotalBytes: -1 } })).toThrow(
      expect.objectContaining({ code: 'INVALID_OPTIONS' }),
    )
    expect(() => p.open({ limits: { onExceeded: 'delete-all' as 'refuse' } })).toThrow(
      expect.objectContaining({ code: 'INVALID_OPTIONS' }),
    )
  })
})
