import { randomBytes } from 'node:crypto'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pipeline, Readable, Transform } from 'node:stream'
import { CopyObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3'
import { readStream } from '@patch-backup/conformance'
import {
  type BackupStore,
  createPatchBackups,
  isPatchBackupError,
  type PatchBackups,
  sha256Integrity,
} from '@patch-backup/core'
import { createJsonManifestRepository } from '@patch-backup/manifest'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import {
  type Bucket,
  contentAddressOf,
  createS3ClientFromEnv,
  createS3Store,
  createS3StoreFromEnv,
  decodeKey,
  encodeKey,
  freeContentIfUnreferenced,
  openBucket,
  parseS3Url,
  type S3Store,
} from '../src/index.js'
import { createS3Fixture, type S3Fixture } from './fixture.js'
import { CREDENTIALS, type S3TestServer, startS3Server } from './server.js'

const KEY_A = 'socket:patch:backup:11111111-aaaa:0123456789abcdef'
const KEY_B = 'socket:patch:backup:22222222-bbbb:fedcba9876543210'
const MIB = 1024 * 1024

async function caught(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => undefined,
    (error: unknown) => error,
  )
}

/** Records the name of every command the client sends. */
function recordCommands(client: S3Client): string[] {
  const sent: string[] = []
  client.middlewareStack.add(
    (next, context) => async (args) => {
      sent.push(String(context.commandName).replace(/Command$/, ''))
      return next(args)
    },
    { step: 'initialize' },
  )
  return sent
}

/** Every object name under the store's prefix, relative to it, sorted. */
async function objectsOf(store: S3Store): Promise<string[]> {
  const names: string[] = []
  for await (const name of openBucket(store.client, store.bucket).list(`${store.prefix}/`)) {
    names.push(name.slice(store.prefix.length + 1))
  }
  return names.sort()
}

function failingStream(goodBytes: number): Readable {
  let sent = 0
  return new Readable({
    read() {
      if (sent < goodBytes) {
        sent += MIB
        this.push(randomBytes(MIB))
      } else this.destroy(new Error('disk read failed'))
    },
  })
}

let server: S3TestServer
beforeAll(async () => {
  server = await startS3Server()
})
afterAll(async () => {
  await server?.stop()
})

describe('object layout', () => {
  let fx: S3Fixture
  beforeEach(() => {
    fx = createS3Fixture(server)
  })

  it('stores bytes once under their sha256, one key object and one marker per key', async () => {
    const bytes = Buffer.from('shared bytes\n')
    const { integrity } = await fx.store.put(KEY_A, bytes)
    await fx.store.put(KEY_B, Readable.from([bytes]))
    const hex = contentAddressOf(integrity)!.hex
    expect(await objectsOf(fx.store)).toEqual(
      [
        `content/sha256/${hex}`,
        `keys/${KEY_A}`,
        `keys/${KEY_B}`,
        `refs/sha256/${hex}/${KEY_A}`,
        `refs/sha256/${hex}/${KEY_B}`,
      ].sort(),
    )
    const text = await openBucket(fx.store.client, fx.store.bucket).readText(
      fx.store.names.key(KEY_A),
    )
    expect(JSON.parse(text!)).toEqual({ integrity, size: bytes.length })
  })

  it('encodes any key into one object-name segment and lists it back by prefix', async () => {
    const odd = ['a/b/../c', '.', '..', 'spaces and %41', 'ünïcødé ✓', '', 'x?y#z&w=1']
    for (const key of odd) {
      expect(encodeKey(key)).not.toMatch(/[/.]/)
      expect(decodeKey(encodeKey(key))).toBe(key)
      await fx.store.put(key, Buffer.from(key))
      await expect(fx.store.has(key)).resolves.toBe(true)
    }
    const all: string[] = []
    for await (const key of fx.store.keys('')) all.push(key)
    expect(all.sort()).toEqual([...odd].sort())
    const dotted: string[] = []
    for await (const key of fx.store.keys('.')) dotted.push(key)
    expect(dotted.sort()).toEqual(['.', '..'])
  })

  it('uses the bucket root when there is no prefix, and normalizes slashes', () => {
    const client = server.client()
    expect(createS3Store({ client, bucket: server.bucket }).names.key('k')).toBe('keys/k')
    const store = createS3Store({ client, bucket: server.bucket, prefix: '/team//backups/' })
    expect(store.prefix).toBe('team/backups')
    expect(store.names.content({ algorithm: 'sha256', hex: 'ab' })).toBe(
      'team/backups/content/sha256/ab',
    )
  })

  it('refuses bad options with INVALID_OPTIONS', () => {
    const client = server.client()
    const bad = [
      () => createS3Store({ client: undefined as unknown as S3Client, bucket: 'b' }),
      () => createS3Store({ client, bucket: '' }),
      () => createS3Store({ client, bucket: 'b', partSize: 1024 }),
      () => createS3Store({ client, bucket: 'b', queueSize: 0 }),
    ]
    for (const make of bad) {
      expect(isPatchBackupError(caughtSync(make), 'INVALID_OPTIONS')).toBe(true)
    }
  })
})

function caughtSync(fn: () => unknown): unknown {
  try {
    fn()
  } catch (error) {
    return error
  }
  return undefined
}

describe('uploads', () => {
  it('puts small sources straight at their address: no temp object, no copy', async () => {
    const fx = createS3Fixture(server)
    const sent = recordCommands(fx.store.client)
    await fx.store.put(KEY_A, Readable.from([randomBytes(100_000)]))
    // The key's old record, the content check, the content, its marker, the key object.
    expect(sent.sort()).toEqual(['GetObject', 'HeadObject', 'PutObject', 'PutObject', 'PutObject'])
  })

  it('drops the marker of the bytes a key held before it moved to other bytes', async () => {
    const fx = createS3Fixture(server)
    const { integrity: before } = await fx.store.put(KEY_A, Buffer.from('before'))
    const refsOf = async (integrity: string) => {
      const names: string[] = []
      for await (const name of openBucket(fx.store.client, fx.store.bucket).list(
        fx.store.names.refsPrefix(contentAddressOf(integrity)!),
      ))
        names.push(name)
      return names
    }
    await expect(refsOf(before)).resolves.toHaveLength(1)
    const { integrity: after } = await fx.store.put(KEY_A, Buffer.from('after'))
    await expect(refsOf(before)).resolves.toEqual([])
    await expect(refsOf(after)).resolves.toHaveLength(1)
    // Putting the same bytes again keeps the marker.
    await fx.store.put(KEY_A, Buffer.from('after'))
    await expect(refsOf(after)).resolves.toHaveLength(1)
  })

  it('sends no bytes again for content the store already holds', async () => {
    const fx = createS3Fixture(server)
    const bytes = randomBytes(100_000)
    await fx.store.put(KEY_A, bytes)
    const sent = recordCommands(fx.store.client)
    await fx.store.put(KEY_B, bytes)
    // old record, look, marker, key object
    expect(sent.sort()).toEqual(['GetObject', 'HeadObject', 'PutObject', 'PutObject'])
  })

  it('streams a large source up in parts to a temp object, copies it into place and deletes it', async () => {
    const fx = createS3Fixture(server, { inlineLimit: MIB, partSize: 5 * MIB })
    const bytes = randomBytes(12 * MIB)
    const sent = recordCommands(fx.store.client)
    const chunks = Array.from({ length: 48 }, (_, i) =>
      bytes.subarray(i * 256 * 1024, (i + 1) * 256 * 1024),
    )
    const { integrity, size } = await fx.store.put(KEY_A, Readable.from(chunks))
    expect({ integrity, size }).toEqual({ integrity: sha256Integrity(bytes), size: bytes.length })
    expect(sent.filter((c) => c === 'UploadPart')).toHaveLength(3)
    expect(sent).toContain('CreateMultipartUpload')
    expect(sent).toContain('CompleteMultipartUpload')
    expect(sent).toContain('CopyObject')
    expect((await objectsOf(fx.store)).filter((name) => name.startsWith('tmp/'))).toEqual([])
    expect((await readStream((await fx.store.open(KEY_A, integrity))!)).equals(bytes)).toBe(true)

    // The same bytes again: uploaded to a temp object to learn their hash, but not copied.
    sent.length = 0
    await fx.store.put(KEY_B, Readable.from(chunks))
    expect(sent).not.toContain('CopyObject')
    expect((await objectsOf(fx.store)).filter((name) => name.startsWith('content/'))).toHaveLength(
      1,
    )
  })

  it('leaves no temp object, key or marker when a large source fails mid-upload', async () => {
    const fx = createS3Fixture(server, { inlineLimit: MIB, partSize: 5 * MIB })
    const failure = await caught(fx.store.put(KEY_A, failingStream(7 * MIB)))
    expect(isPatchBackupError(failure, 'STORE_ERROR')).toBe(true)
    expect(String((failure as Error).cause)).toContain('disk read failed')
    expect(await objectsOf(fx.store)).toEqual([])
    await expect(fx.store.has(KEY_A)).resolves.toBe(false)
  })

  it('replaces a content object of the wrong size on the next put of its bytes', async () => {
    const fx = createS3Fixture(server)
    const bytes = randomBytes(50_000)
    const { integrity } = await fx.store.put(KEY_A, bytes)
    await fx.store.client.send(
      new PutObjectCommand({
        Bucket: server.bucket,
        Key: fx.contentName(integrity),
        Body: bytes.subarray(0, 100),
      }),
    )
    await fx.store.put(KEY_B, bytes)
    expect((await fx.readContent(integrity)).equals(bytes)).toBe(true)
  })
})

describe('reads', () => {
  it('opens what a key points at now with openKey, verified', async () => {
    const fx = createS3Fixture(server)
    await expect(fx.store.openKey(KEY_A)).resolves.toBeUndefined()
    const bytes = randomBytes(20_000)
    const { integrity } = await fx.store.put(KEY_A, bytes)
    expect((await readStream((await fx.store.openKey(KEY_A))!)).equals(bytes)).toBe(true)
    await fx.corrupt(integrity)
    const failure = await caught(readStream((await fx.store.openKey(KEY_A))!))
    expect(isPatchBackupError(failure, 'INTEGRITY_MISMATCH')).toBe(true)
  })

  it('keeps bytes that stillNeeded claims when the last key goes', async () => {
    const fx = createS3Fixture(server)
    const { integrity } = await fx.store.put(KEY_A, Buffer.from('claimed by a manifest'))
    const asked: string[] = []
    const stillNeeded = async (i: string) => {
      asked.push(i)
      return true
    }
    await expect(fx.store.remove(KEY_A, { freeContent: true, stillNeeded })).resolves.toBe(true)
    expect(asked).toEqual([integrity])
    await expect(fx.holdsContent(integrity)).resolves.toBe(true)
  })

  it('treats an unreadable key object as absent, and still removes it', async () => {
    const fx = createS3Fixture(server)
    await openBucket(fx.store.client, fx.store.bucket).write(fx.store.names.key(KEY_A), 'not json')
    await expect(fx.store.has(KEY_A)).resolves.toBe(false)
    await expect(fx.store.remove(KEY_A, { freeContent: true })).resolves.toBe(true)
    await expect(fx.store.remove(KEY_A)).resolves.toBe(false)
  })

  it('reads a copy a remover has parked while the content object is away', async () => {
    const fx = createS3Fixture(server)
    const bytes = Buffer.from('parked for a moment')
    const { integrity } = await fx.store.put(KEY_A, bytes)
    const address = contentAddressOf(integrity)!
    await fx.store.client.send(
      new CopyObjectCommand({
        Bucket: server.bucket,
        Key: fx.store.names.trash(address),
        CopySource: `${server.bucket}/${fx.contentName(integrity)}`,
      }),
    )
    await fx.lose(integrity)
    await expect(fx.store.has(KEY_A)).resolves.toBe(true)
    expect((await readStream((await fx.store.open(KEY_A, integrity))!)).equals(bytes)).toBe(true)
  })

  it('gives undefined for a digest of the wrong length and rejects unknown algorithms', async () => {
    const fx = createS3Fixture(server)
    await expect(fx.store.open(KEY_A, 'sha256-AAAA')).resolves.toBeUndefined()
    const failure = await caught(fx.store.open(KEY_A, 'md5-AAAAAAAAAAAAAAAAAAAAAA=='))
    expect(isPatchBackupError(failure, 'INTEGRITY_MISMATCH')).toBe(true)
  })

  it('turns a missing bucket into STORE_ERROR with the cause', async () => {
    const store = createS3Store({ client: server.client(), bucket: 'no-such-bucket' })
    for (const attempt of [
      () => store.put(KEY_A, Buffer.from('x')),
      () => store.open(KEY_A, sha256Integrity('x')),
      () => store.has(KEY_A),
    ]) {
      const failure = await caught(attempt())
      expect(isPatchBackupError(failure, 'STORE_ERROR'), String(failure)).toBe(true)
      expect((failure as Error).cause).toMatchObject({ name: 'NoSuchBucket' })
    }
  })
})

/** A bucket that runs `hook` right after the `n`th call of `method` (1-based) returns. */
function hooked(bucket: Bucket, method: 'first' | 'delete', n: number, hook: () => Promise<void>) {
  let calls = 0
  const wrapped: Bucket = { ...bucket }
  const original = bucket[method] as (name: string) => Promise<unknown>
  ;(wrapped as unknown as Record<string, unknown>)[method] = async (name: string) => {
    const result = await original(name)
    if (++calls === n) await hook()
    return result
  }
  return wrapped
}

describe('the remove protocol', () => {
  let fx: S3Fixture
  let bucket: Bucket
  const bytes = Buffer.from('contended bytes')
  const integrity = sha256Integrity(bytes)
  const address = contentAddressOf(integrity)!
  beforeEach(async () => {
    fx = createS3Fixture(server)
    bucket = openBucket(fx.store.client, fx.store.bucket)
    await fx.store.put(KEY_A, bytes)
    await fx.store.remove(KEY_A) // key and marker gone; content left for the protocol to free
  })

  const expectKeyBReadable = async () => {
    await expect(fx.store.has(KEY_B)).resolves.toBe(true)
    expect((await readStream((await fx.store.open(KEY_B, integrity))!)).equals(bytes)).toBe(true)
    expect((await objectsOf(fx.store)).filter((name) => name.startsWith('trash/'))).toEqual([])
  }

  it('frees unreferenced content and leaves nothing parked', async () => {
    await expect(freeContentIfUnreferenced(bucket, fx.store.names, address)).resolves.toBe(true)
    expect(await objectsOf(fx.store)).toEqual([])
  })

  it('puts the bytes back when a put found them in place just before they were moved', async () => {
    // The put runs whole between R1 (no marker) and R2 (park): it sees the content and keeps it.
    const racing = hooked(bucket, 'first', 1, async () => {
      await fx.store.put(KEY_B, bytes)
    })
    await expect(freeContentIfUnreferenced(racing, fx.store.names, address)).resolves.toBe(false)
    await expectKeyBReadable()
  })

  it('lets the put write the bytes again when it comes after they were deleted', async () => {
    // The put runs whole between R3 (delete) and R4 (look again): it finds no content and writes it.
    const racing = hooked(bucket, 'delete', 1, async () => {
      await fx.store.put(KEY_B, bytes)
    })
    await expect(freeContentIfUnreferenced(racing, fx.store.names, address)).resolves.toBe(false)
    await expectKeyBReadable()
  })

  it('loses nothing in 20 races between two store instances on two clients', async () => {
    const other = createS3Store({
      client: server.client(),
      bucket: fx.store.bucket,
      prefix: fx.store.prefix,
    })
    for (let round = 0; round < 20; round++) {
      await fx.store.put(KEY_A, bytes)
      await Promise.all([fx.store.remove(KEY_A, { freeContent: true }), other.put(KEY_B, bytes)])
      const stream = await fx.store.open(KEY_B, integrity)
      expect(stream, `round ${round}`).toBeDefined()
      expect((await readStream(stream!)).equals(bytes)).toBe(true)
      await other.remove(KEY_B, { freeContent: true })
    }
    expect(await objectsOf(fx.store)).toEqual([])
  })
})

describe('configuration', () => {
  it('parses s3:// URLs for a --store option', () => {
    expect(parseS3Url('s3://my-bucket')).toEqual({ bucket: 'my-bucket', prefix: '' })
    expect(parseS3Url('s3://my-bucket/team/backups/')).toEqual({
      bucket: 'my-bucket',
      prefix: 'team/backups',
    })
    expect(
      parseS3Url(
        's3://b/p?endpoint=http%3A%2F%2F127.0.0.1%3A9000&region=eu-west-1&forcePathStyle=true',
      ),
    ).toEqual({
      bucket: 'b',
      prefix: 'p',
      endpoint: 'http://127.0.0.1:9000',
      region: 'eu-west-1',
      forcePathStyle: true,
    })
    for (const bad of [
      'http://b/p',
      's3://',
      's3:///p',
      's3://key:secret@b/p',
      's3://b:9000/p',
      's3://b/p?colour=red',
      's3://b/p?forcePathStyle=yes',
      'not a url',
    ]) {
      expect(
        isPatchBackupError(
          caughtSync(() => parseS3Url(bad)),
          'INVALID_OPTIONS',
        ),
        bad,
      ).toBe(true)
    }
  })

  it('builds a path-style client for a custom endpoint from the environment', async () => {
    const client = createS3ClientFromEnv({
      env: { AWS_ENDPOINT_URL: 'http://127.0.0.1:9000' },
    })
    expect(client.config.forcePathStyle).toBe(true)
    expect(await client.config.region()).toBe('us-east-1')
    expect((await client.config.endpoint?.())?.hostname).toBe('127.0.0.1')
    expect(await client.config.requestChecksumCalculation()).toBe('WHEN_REQUIRED')
    client.destroy()
  })

  it('prefers options over AWS_ENDPOINT_URL_S3 over AWS_ENDPOINT_URL, and keeps AWS defaults without one', async () => {
    const env = {
      AWS_ENDPOINT_URL: 'http://127.0.0.1:1',
      AWS_ENDPOINT_URL_S3: 'http://127.0.0.1:2',
      AWS_REGION: 'eu-central-1',
    }
    const fromEnv = createS3ClientFromEnv({ env })
    expect((await fromEnv.config.endpoint?.())?.port).toBe(2)
    expect(await fromEnv.config.region()).toBe('eu-central-1')
    const fromOptions = createS3ClientFromEnv({
      env,
      endpoint: 'http://127.0.0.1:3',
      region: 'us-west-2',
      forcePathStyle: false,
    })
    expect((await fromOptions.config.endpoint?.())?.port).toBe(3)
    expect(await fromOptions.config.region()).toBe('us-west-2')
    expect(fromOptions.config.forcePathStyle).toBe(false)
    const aws = createS3ClientFromEnv({ env: { AWS_REGION: 'eu-west-1' } })
    expect(aws.config.forcePathStyle).toBe(false)
    expect(await aws.config.requestChecksumCalculation()).not.toBe('WHEN_REQUIRED')
    for (const client of [fromEnv, fromOptions, aws]) client.destroy()
    expect(
      isPatchBackupError(
        caughtSync(() => createS3ClientFromEnv({ endpoint: 'not a url' })),
        'INVALID_OPTIONS',
      ),
    ).toBe(true)
  })

  it('round-trips through createS3StoreFromEnv(parseS3Url(…))', async () => {
    const url = `s3://${server.bucket}/from-env?endpoint=${encodeURIComponent(server.endpoint)}`
    const store = createS3StoreFromEnv({
      ...parseS3Url(url),
      env: {},
      clientConfig: { credentials: CREDENTIALS },
    })
    const bytes = randomBytes(10_000)
    const { integrity } = await store.put(KEY_A, bytes)
    expect((await readStream((await store.open(KEY_A, integrity))!)).equals(bytes)).toBe(true)
    await expect(store.remove(KEY_A, { freeContent: true })).resolves.toBe(true)
    store.client.destroy()
  })
})

describe('the service on S3 and JSON manifests', () => {
  let work: string
  let project: string
  let manifestsDir: string
  const UUID = 'patch-1'

  beforeEach(async () => {
    work = await mkdtemp(join(tmpdir(), 'pb-s3-service-'))
    project = join(work, 'project')
    manifestsDir = join(work, 'manifests')
    await mkdir(join(project, 'node_modules/lodash'), { recursive: true })
    await writeFile(join(project, 'node_modules/lodash/index.js'), 'module.exports = 1\n')
  })
  afterEach(async () => {
    await rm(work, { recursive: true, force: true })
  })

  const serviceOn = (store: BackupStore): PatchBackups =>
    createPatchBackups({
      store,
      manifests: createJsonManifestRepository({ dir: manifestsDir }),
      cwd: project,
    })
  const manifestFile = () => readFile(join(manifestsDir, `${UUID}.json`), 'utf8')

  it('catches a tampered object: INTEGRITY_MISMATCH, target untouched', async () => {
    const fx = createS3Fixture(server)
    const backups = serviceOn(fx.store)
    const info = await backups.createBackup(UUID, 'node_modules/lodash/index.js')
    await fx.store.client.send(
      new PutObjectCommand({
        Bucket: server.bucket,
        Key: fx.contentName(info.integrity),
        Body: Buffer.from('module.exports = 2\n'),
      }),
    )
    await writeFile(join(project, 'node_modules/lodash/index.js'), 'patched\n')
    const failure = await caught(backups.restoreBackup(UUID, 'node_modules/lodash/index.js'))
    expect(isPatchBackupError(failure, 'INTEGRITY_MISMATCH')).toBe(true)
    expect(await readFile(join(project, 'node_modules/lodash/index.js'), 'utf8')).toBe('patched\n')
  })

  describe('with the server stopped mid-operation', () => {
    let own: S3TestServer
    beforeEach(async () => {
      own = await startS3Server()
    })
    afterEach(async () => {
      await own.stop()
    })

    const storeOn = (s: S3TestServer) =>
      createS3Store({
        client: s.client({ maxAttempts: 2 }),
        bucket: s.bucket,
        prefix: 'stopped',
        partSize: 5 * MIB,
      })

    it('createBackup rejects with STORE_ERROR and its cause, and the manifest stays as it was', async () => {
      const backups = serviceOn(storeOn(own))
      await backups.createBackup(UUID, 'node_modules/lodash/index.js')
      const before = await manifestFile()
      await writeFile(join(project, 'big.bin'), randomBytes(20 * MIB))
      // Cut every connection as soon as the first part of the big file starts to arrive.
      own.httpServer().prependListener('request', (request) => {
        if (request.method === 'PUT' && request.url?.includes('partNumber=')) void own.kill()
      })
      const failure = await caught(backups.createBackup(UUID, 'big.bin'))
      expect(isPatchBackupError(failure, 'STORE_ERROR'), String(failure)).toBe(true)
      expect((failure as Error).cause).toBeInstanceOf(Error)
      expect(await manifestFile()).toBe(before)
      await expect(backups.hasBackup(UUID, 'big.bin')).resolves.toBe(false)
    })

    it('restoreBackup rejects with STORE_ERROR and its cause, and the target stays as it was', async () => {
      const store = storeOn(own)
      // Stop the server once the first bytes of the download have come through.
      const cutting: BackupStore = {
        ...store,
        async open(key, integrity) {
          const stream = await store.open(key, integrity)
          if (!stream) return stream
          let cut = false
          const tap = new Transform({
            transform(chunk, _encoding, done) {
              if (!cut) {
                cut = true
                void own.kill()
              }
              done(null, chunk)
            },
          })
          pipeline(stream, tap, () => {})
          return tap
        },
      }
      const big = randomBytes(20 * MIB)
      await writeFile(join(project, 'big.bin'), big)
      await serviceOn(store).createBackup(UUID, 'big.bin')
      await writeFile(join(project, 'big.bin'), 'patched')
      const failure = await caught(serviceOn(cutting).restoreBackup(UUID, 'big.bin'))
      expect(isPatchBackupError(failure, 'STORE_ERROR'), String(failure)).toBe(true)
      expect((failure as Error).cause).toBeInstanceOf(Error)
      expect(await readFile(join(project, 'big.bin'), 'utf8')).toBe('patched')
    })
  })
})
