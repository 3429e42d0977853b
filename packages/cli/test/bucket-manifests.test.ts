import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import type { BackupInfo, ManifestRepository, PatchManifest } from '@patch-backup/core'
import { createJsonManifestRepository } from '@patch-backup/manifest'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createS3ManifestRepository } from '../../store-s3/src/index.js'
import { type S3TestServer, startS3Server } from '../../store-s3/test/server.js'
import { bucketManifests } from '../src/bucket-manifests.js'

// The CLI's manifests with `--store s3://…`: the bucket's, composed with this machine's part. The
// service orders a backup against another machine's cleanup through `withLock`, so the
// composition must hand the bucket's lock through, around the whole task.

let s3: S3TestServer
let work: string
beforeAll(async () => {
  s3 = await startS3Server()
  work = await mkdtemp(path.join(os.tmpdir(), 'pb-cli-bucket-'))
})
afterAll(async () => {
  await s3?.stop()
  await rm(work, { recursive: true, force: true })
})

/** One machine's composed repository: its own root, its own client, the shared prefix. */
function machine(name: string, prefix: string): ManifestRepository {
  const root = path.join(work, name)
  return bucketManifests({
    shared: createS3ManifestRepository({ client: s3.client(), bucket: s3.bucket, prefix }),
    machine: createJsonManifestRepository({ dir: path.join(root, 'machine') }),
    legacy: createJsonManifestRepository({ dir: path.join(root, 'manifests') }),
  })
}

const entry = (integrity: string): BackupInfo => ({
  integrity,
  size: 1,
  backedUpAt: '2025-01-14T12:00:00.000Z',
  originalPath: 'a.js',
})

const adding = (file: string, info: BackupInfo) => (current: PatchManifest | undefined) => {
  const base = current ?? { uuid: 'p', patchedAt: '2025-01-14T12:00:00.000Z', files: {} }
  if (base.files[file]) return base
  return { ...base, files: { ...base.files, [file]: info } }
}

describe('bucketManifests', () => {
  it("two processes of one machine never both decide from the same machine part (a restore's journal)", async () => {
    // Two processes: each its own client and repositories, on one machine's root.
    const a = machine('same', 'journals')
    const b = machine('same', 'journals')
    await a.update('p', () => ({ uuid: 'p', patchedAt: '2025-01-14T12:00:00.000Z', files: {} }))
    // What core's setJournal does: refuse to replace another restore's journal.
    const setJournal = (own: string) => (current: PatchManifest | undefined) => {
      if (!current) return current
      const other = current.restoreJournal as { id?: string } | undefined
      if (other && other.id !== own) throw new Error(`journal ${other.id} in flight`)
      return { ...current, restoreJournal: { id: own, phase: 'staging', files: {} } }
    }
    const results = await Promise.allSettled([
      a.update('p', setJournal('A')),
      b.update('p', setJournal('B')),
    ])
    expect(results.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected'])
    const winner = results[0]?.status === 'fulfilled' ? 'A' : 'B'
    expect((await machine('same', 'journals').get('p'))?.restoreJournal).toMatchObject({
      id: winner,
    })
  })

  it('holds the bucket lock of the patch for the whole task: another machine waits', async () => {
    const a = machine('a', 'lock')
    const b = machine('b', 'lock')
    expect(a.withLock).toBeTypeOf('function')
    let bDone = false
    let bWrite: Promise<PatchManifest | undefined> | undefined
    await a.withLock?.('p', async (tx) => {
      expect(tx.current).toBeUndefined()
      bWrite = b.update('p', adding('a.js', entry('sha256-B'))).finally(() => {
        bDone = true
      })
      // What a backup does between its read and its write: B must not get in meanwhile.
      await new Promise((resolve) => setTimeout(resolve, 500))
      expect(bDone).toBe(false)
      await tx.verify()
      await tx.update(adding('a.js', entry('sha256-A')))
    })
    // B ran after A's task: it saw A's entry and kept it (keep-first), as every reader does.
    expect((await bWrite)?.files['a.js']?.integrity).toBe('sha256-A')
    expect((await machine('c', 'lock').get('p'))?.files['a.js']?.integrity).toBe('sha256-A')
  })
})
