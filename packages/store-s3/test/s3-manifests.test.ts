/// <reference path="./s3rver.d.ts" />
import { randomUUID } from 'node:crypto'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3'
import { sampleManifest } from '@patch-backup/conformance'
import {
  type BackupInfo,
  createPatchBackups,
  isPatchBackupError,
  type PatchManifest,
} from '@patch-backup/core'
import S3rver from 's3rver'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  createS3ManifestRepository,
  openBucket,
  openS3Repository,
  type S3ManifestRepositoryOptions,
} from '../src/index.js'
import { BUCKET, CREDENTIALS, type S3TestServer, startS3Server } from './server.js'

let server: S3TestServer
beforeAll(async () => {
  server = await startS3Server()
})
afterAll(async () => {
  await server?.stop()
})

const entry = (integrity: string): BackupInfo => ({
  integrity,
  size: 1,
  backedUpAt: '2025-01-14T12:00:00.000Z',
  originalPath: 'a.js',
})

/** A repository as another machine would open it: its own client, its own cache. */
function machine(prefix: string, options: Partial<S3ManifestRepositoryOptions> = {}) {
  return createS3ManifestRepository({
    client: server.client(),
    bucket: server.bucket,
    prefix,
    ...options,
  })
}

async function objectsUnder(root: string): Promise<string[]> {
  const names: string[] = []
  for await (const name of openBucket(server.client(), server.bucket).list(root)) names.push(name)
  return names.sort()
}

const addFile =
  (path: string, info: BackupInfo) =>
  (current: PatchManifest | undefined): PatchManifest => {
    const base = current ?? { uuid: 'p', patchedAt: '2025-01-14T12:00:00.000Z', files: {} }
    // As the service's keep-first does: an entry already there stays.
    if (base.files[path]) return base
    return { ...base, files: { ...base.files, [path]: info } }
  }

describe('S3 manifests shared by several machines', () => {
  it('keep-first: one add wins, the same on every reader, and the loser returns it', async () => {
    const prefix = `k/${randomUUID()}`
    const a = machine(prefix)
    const b = machine(prefix)
    // Both read "no entry" before either writes: the race the local lock prevents.
    for (let round = 0; round < 10; round++) {
      const path = `f${round}.js`
      const [fromA, fromB] = await Promise.all([
        a.update('p', addFile(path, entry(`sha256-A${round}`))),
        b.update('p', addFile(path, entry(`sha256-B${round}`))),
      ])
      const winner = (await machine(prefix).get('p'))?.files[path]
      expect(winner).toBeDefined()
      expect(fromA?.files[path]).toEqual(winner)
      expect(fromB?.files[path]).toEqual(winner)
      expect((await a.get('p'))?.files[path]).toEqual(winner)
      expect((await b.get('p'))?.files[path]).toEqual(winner)
    }
  })

  it('overwrite: the later write wins on every reader', async () => {
    const prefix = `o/${randomUUID()}`
    const a = machine(prefix)
    const b = machine(prefix)
    await a.update('p', addFile('x.js', entry('sha256-first')))
    await b.update('p', (m) => ({ ...(m as PatchManifest), files: { 'x.js': entry('sha256-b') } }))
    await a.update('p', (m) => ({ ...(m as PatchManifest), files: { 'x.js': entry('sha256-a') } }))
    for (const reader of [a, b, machine(prefix)]) {
      expect((await reader.get('p'))?.files['x.js']?.integrity).toBe('sha256-a')
    }
  })

  it('loses no update among machines writing one patch at once', async () => {
    const prefix = `n/${randomUUID()}`
    const machines = [machine(prefix), machine(prefix), machine(prefix), machine(prefix)]
    await Promise.all(
      machines.flatMap((repo, m) =>
        Array.from({ length: 10 }, (_, i) =>
          repo.update('busy', addFile(`m${m}-${i}.js`, entry(`sha256-${m}-${i}`))),
        ),
      ),
    )
    const files = Object.keys((await machine(prefix).get('busy'))?.files ?? {})
    expect(files).toHaveLength(40)
  })

  it('compaction folds old objects and deletes only those, while another machine writes', async () => {
    const prefix = `c/${randomUUID()}`
    const writer = machine(prefix, { compactAfter: 1_000 })
    const compactor = machine(prefix, { compactAfter: 1_000, compactionMarginMs: 0 })
    for (let i = 0; i < 20; i++) await writer.update('p', addFile(`old${i}.js`, entry('sha256-o')))
    await writer.update('p', (m) => ({ ...(m as PatchManifest), files: {} })) // a removal in the log
    for (let i = 0; i < 5; i++) await writer.update('p', addFile(`old${i}.js`, entry('sha256-p')))
    const writing = (async () => {
      for (let i = 0; i < 20; i++)
        await writer.update('p', addFile(`new${i}.js`, entry('sha256-n')))
    })()
    let compacted = 0
    while (compacted < 3) {
      const done = await compactor.compact('p')
      if (done.written > 0) compacted++
    }
    await writing
    await compactor.compact('p')
    const manifest = await machine(prefix).get('p')
    const expected = [
      ...Array.from({ length: 5 }, (_, i) => `old${i}.js`),
      ...Array.from({ length: 20 }, (_, i) => `new${i}.js`),
    ].sort()
    expect(Object.keys(manifest?.files ?? {}).sort()).toEqual(expected)
    expect(manifest?.files['old0.js']?.integrity).toBe('sha256-p')
    const left = await objectsUnder(`${prefix}/manifests/p/`)
    expect(left).toHaveLength(1)
    expect(left[0]).toMatch(/~snap\d{6}-[0-9a-f]{8}\.json$/)
  })

  it('a deleted patch whose objects are all old enough leaves nothing behind', async () => {
    const prefix = `d/${randomUUID()}`
    const repo = machine(prefix, { compactionMarginMs: 0 })
    await repo.update('gone', addFile('a.js', entry('sha256-a')))
    await repo.update('kept', addFile('a.js', entry('sha256-a')))
    await expect(repo.delete('gone')).resolves.toBe(true)
    await expect(machine(prefix).list()).resolves.toEqual(['kept'])
    await repo.compact()
    expect(await objectsUnder(`${prefix}/manifests/gone/`)).toEqual([])
    await expect(machine(prefix).get('kept')).resolves.toBeDefined()
  })

  it('list costs one request per 1000 objects, not one per patch', async () => {
    const prefix = `l/${randomUUID()}`
    const repo = machine(prefix)
    const uuids = Array.from({ length: 40 }, (_, i) => `patch-${String(i).padStart(2, '0')}`)
    await Promise.all(uuids.map((u) => repo.update(u, () => sampleManifest(u))))
    let requests = 0
    const count = () => requests++
    server.httpServer().on('request', count)
    try {
      await expect(machine(prefix).list()).resolves.toEqual(uuids)
    } finally {
      server.httpServer().off('request', count)
    }
    expect(requests).toBe(1)
  })

  it('a hand-edited object fails its patch with MANIFEST_CORRUPT naming it; others work', async () => {
    const prefix = `x/${randomUUID()}`
    const repo = machine(prefix)
    await repo.update('bad', () => sampleManifest('bad'))
    await repo.update('good', () => sampleManifest('good'))
    const [object] = await objectsUnder(`${prefix}/manifests/bad/`)
    await server
      .client()
      .send(new PutObjectCommand({ Bucket: server.bucket, Key: object, Body: '{"format":' }))
    for (const reader of [repo, machine(prefix)]) {
      const error = await reader.get('bad').catch((e: unknown) => e)
      expect(isPatchBackupError(error, 'MANIFEST_CORRUPT')).toBe(true)
      expect((error as Error).message).toContain(`s3://${server.bucket}/${object}`)
      await expect(reader.get('good')).resolves.toEqual(sampleManifest('good'))
      await expect(reader.list()).resolves.toEqual(['bad', 'good'])
    }
  })
})

describe('S3 manifests when the server goes down', () => {
  it('an update cut off mid-write rejects with STORE_ERROR and leaves nothing half-written', async () => {
    const own = await startS3Server()
    const prefix = 'down'
    try {
      const repo = createS3ManifestRepository({
        client: own.client({ maxAttempts: 2 }),
        bucket: own.bucket,
        prefix,
      })
      await repo.update('p', () => sampleManifest('p'))
      own.httpServer().prependListener('request', (request) => {
        if (request.method === 'PUT' && request.url?.includes('/manifest.json')) void own.kill()
      })
      const failure = await repo
        .update('p', (m) => ({ ...(m as PatchManifest), files: {} }))
        .catch((e: unknown) => e)
      expect(isPatchBackupError(failure, 'STORE_ERROR'), String(failure)).toBe(true)
      // The same bucket served again: readers see the manifest as it was before.
      const again = new S3rver({
        address: '127.0.0.1',
        port: 0,
        silent: true,
        directory: own.directory,
      })
      const { port } = await again.run()
      again.logger.silent = true
      const client = new S3Client({
        endpoint: `http://127.0.0.1:${port}`,
        region: 'us-east-1',
        forcePathStyle: true,
        credentials: CREDENTIALS,
      })
      try {
        const reader = createS3ManifestRepository({ client, bucket: BUCKET, prefix })
        await expect(reader.get('p')).resolves.toEqual(sampleManifest('p'))
      } finally {
        client.destroy()
        await again.close()
      }
    } finally {
      await own.stop()
    }
  })
})

describe('gc on a bucket other machines back up to', () => {
  it('keeps a key another machine has stored and not yet recorded', async () => {
    const prefix = `g/${randomUUID()}`
    const dir = await mkdtemp(join(tmpdir(), 'pb-s3-gc-'))
    try {
      await mkdir(join(dir, 'node_modules'), { recursive: true })
      await writeFile(join(dir, 'a.js'), 'original bytes')
      const first = openS3Repository({ client: server.client(), bucket: server.bucket, prefix })
      // Machine 1 is half-way through a backup: the bytes are stored, the manifest not yet updated.
      const put = await first.store.put('socket:patch:backup:p:0123456789abcdef', Buffer.from('x'))
      const second = openS3Repository({ client: server.client(), bucket: server.bucket, prefix })
      const backups = createPatchBackups({ ...second, cwd: dir })
      await backups.createBackup('other', 'a.js')
      await expect(backups.gc()).resolves.toMatchObject({ removedKeys: 0 })
      await expect(first.store.has('socket:patch:backup:p:0123456789abcdef')).resolves.toBe(true)
      await expect(first.store.open('k', put.integrity)).resolves.toBeDefined()
      // Without the grace, the same key is an orphan and goes.
      const eager = openS3Repository({
        client: server.client(),
        bucket: server.bucket,
        prefix,
        orphanGraceMs: 0,
      })
      await expect(createPatchBackups({ ...eager, cwd: dir }).gc()).resolves.toMatchObject({
        removedKeys: 1,
      })
      await expect(backups.restoreBackup('other', 'a.js')).resolves.toBe(true)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})
