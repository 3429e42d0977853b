import { mkdir, readdir, rename, stat, utimes, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { sha256Integrity } from '@patch-backup/core'
import cacache from 'cacache'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { collectGarbage, contentPathFor } from '../src/index.js'
import { type CacacheFixture, createCacacheFixture } from './fixture.js'

const HOUR = 60 * 60 * 1000

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
    await rename(content, parked)
    await writeFile(join(tmp, 'patch-backup-tmp-old'), 'old scratch')
    await writeFile(join(tmp, 'patch-backup-tmp-fresh'), 'fresh scratch')
    const old = new Date(Date.now() - 2 * HOUR)
    await utimes(join(tmp, 'patch-backup-tmp-old'), old, old)
    // Two hours on: the parked file (parked now, by its ctime) is old by then; the fresh scratch
    // file is still being written then.
    const later = new Date(Date.now() + 2 * HOUR)
    await utimes(join(tmp, 'patch-backup-tmp-fresh'), later, later)
    await collectGarbage(fixture.cachePath, { now: () => Date.now() + 2 * HOUR })
    expect(await exists(content)).toBe(true)
    expect((await readdir(tmp)).sort()).toEqual(['patch-backup-tmp-fresh'])
  })

  /** Parks the content of `bytes` in tmp/ as a remover does (rename keeps the content's mtime). */
  async function park(bytes: Buffer, age: number): Promise<{ content: string; parked: string }> {
    const integrity = sha256Integrity(bytes)
    const content = contentPathFor(fixture.cachePath, integrity)
    const old = new Date(Date.now() - age)
    await utimes(content, old, old)
    const tmp = join(fixture.cachePath, 'tmp')
    await mkdir(tmp, { recursive: true })
    const hex = Buffer.from(integrity.slice(7), 'base64').toString('hex')
    const parked = join(tmp, `patch-backup-trash-sha256-${hex}-now`)
    await rename(content, parked)
    return { content, parked }
  }

  it('leaves a trash file a remover parked just now, however old its content is', async () => {
    const bytes = Buffer.from('written two hours ago, parked a moment ago')
    await fixture.store.put('gone', bytes)
    await fixture.store.remove('gone')
    const { parked } = await park(bytes, 2 * HOUR)
    await collectGarbage(fixture.cachePath)
    // The remover is still deciding (a put may reference the bytes again): not gc's to delete.
    expect(await exists(parked)).toBe(true)
  })

  it('puts back parked bytes a put referenced after gc read the index', async () => {
    const bytes = Buffer.from('parked, then backed up again by another patch')
    await fixture.store.put('first', bytes)
    await fixture.store.remove('first')
    const content = contentPathFor(fixture.cachePath, sha256Integrity(bytes))
    let landed = false
    // gc has read the index (nothing references the bytes) and asks about them: meanwhile a put
    // of another key completes (the bytes are in place), then a remover parks them (R2).
    await collectGarbage(fixture.cachePath, {
      now: () => Date.now() + HOUR,
      stillNeeded: async () => {
        if (landed) return false // no manifest records them: only the live key may keep them
        landed = true
        await fixture.store.put('second', bytes)
        await park(bytes, 2 * HOUR)
        return true
      },
    })
    expect(landed).toBe(true)
    expect(await exists(content)).toBe(true)
    await expect(fixture.store.has('second')).resolves.toBe(true)
  })
})
