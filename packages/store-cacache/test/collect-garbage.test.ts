import { mkdir, readdir, stat, utimes, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { sha256Integrity } from '@patch-backup/core'
import cacache from 'cacache'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { collectGarbage, contentPathFor } from '../src/index.js'
import { type CacacheFixture, createCacacheFixture } from './fixture.js'

const exists = (file: string) =>
  stat(file).then(
    () => true,
    () => false,
  )

describe('collectGarbage', () => {
  let fixture: CacacheFixture
  beforeEach(async () => {
    fixture = await createCacacheFixture()
  })
  afterEach(() => fixture.cleanup())

  it('frees content no key references, counts its bytes, and keeps the rest', async () => {
    const kept = Buffer.from('still referenced')
    const orphan = Buffer.from('overwritten and forgotten')
    await fixture.store.put('k1', kept)
    await fixture.store.put('k2', orphan)
    await fixture.store.put('k2', Buffer.from('newer bytes for k2'))
    const report = await fixture.store.collectGarbage()
    expect(report).toEqual({ removedBlobs: 1, freedBytes: orphan.length })
    expect(await exists(contentPathFor(fixture.cachePath, sha256Integrity(orphan)))).toBe(false)
    expect(await exists(contentPathFor(fixture.cachePath, sha256Integrity(kept)))).toBe(true)
    await expect(fixture.store.collectGarbage()).resolves.toEqual({
      removedBlobs: 0,
      freedBytes: 0,
    })
  })

  it('leaves content written by plain cacache that its index references', async () => {
    const integrity = await cacache.put(fixture.cachePath, 'plain', Buffer.from('plain cacache'), {
      algorithms: ['sha256'],
    })
    await expect(fixture.store.collectGarbage()).resolves.toEqual({
      removedBlobs: 0,
      freedBytes: 0,
    })
    expect(await exists(contentPathFor(fixture.cachePath, String(integrity)))).toBe(true)
  })

  it('clears old scratch files but not fresh ones, and puts back a parked blob still referenced', async () => {
    const bytes = Buffer.from('parked by a remover that crashed')
    const integrity = sha256Integrity(bytes)
    await fixture.store.put('live', bytes)
    const content = contentPathFor(fixture.cachePath, integrity)
    const tmp = join(fixture.cachePath, 'tmp')
    await mkdir(tmp, { recursive: true })
    const hex = Buffer.from(integrity.slice(7), 'base64').toString('hex')
    const parked = join(tmp, `patch-backup-trash-sha256-${hex}-crashed`)
    const { rename } = await import('node:fs/promises')
    await rename(content, parked)
    await writeFile(join(tmp, 'patch-backup-tmp-old'), 'old scratch')
    await writeFile(join(tmp, 'patch-backup-tmp-fresh'), 'fresh scratch')
    const old = new Date(Date.now() - 2 * 60 * 60 * 1000)
    await utimes(parked, old, old)
    await utimes(join(tmp, 'patch-backup-tmp-old'), old, old)
    await collectGarbage(fixture.cachePath)
    expect(await exists(content)).toBe(true)
    expect((await readdir(tmp)).sort()).toEqual(['patch-backup-tmp-fresh'])
  })
})
