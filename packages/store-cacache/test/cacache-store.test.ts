import { execFileSync, spawn } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises'
import { dirname, join, relative, sep } from 'node:path'
import { Readable } from 'node:stream'
import { fileURLToPath } from 'node:url'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { isPatchBackupError, sha256Integrity } from '@patch-backup/core'
import cacache from 'cacache'
import ssri from 'ssri'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import {
  contentPathFor,
  createCacacheStore,
  freeContentIfUnreferenced,
  indexPathFor,
  isContentReferenced,
} from '../src/index.js'
import { indexEntries } from '../src/index-entry.js'
import { REFS_DIR, references, refPathFor } from '../src/references.js'
import { type CacacheFixture, createCacacheFixture } from './fixture.js'

const KEY_A = 'socket:patch:backup:11111111-aaaa:0123456789abcdef'
const KEY_B = 'socket:patch:backup:22222222-bbbb:fedcba9876543210'

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of stream) chunks.push(Buffer.from(chunk))
  return Buffer.concat(chunks)
}

async function readFailure(stream: Readable | undefined): Promise<unknown> {
  if (!stream) throw new Error('expected a stream')
  return readAll(stream).then(
    () => undefined,
    (error: unknown) => error,
  )
}

/** Files left in cacache's scratch dir (our tmp and trash files must never stay behind). */
async function scratchFiles(cachePath: string): Promise<string[]> {
  return readdir(join(cachePath, 'tmp')).catch(() => [])
}

/** A stream of `total` bytes in `chunk`-sized pieces, generated on demand (never held whole). */
function generated(total: number, chunk: Buffer, onRead: () => void = () => {}): Readable {
  let sent = 0
  return new Readable({
    highWaterMark: chunk.length,
    read() {
      onRead()
      if (sent >= total) {
        this.push(null)
        return
      }
      const piece = chunk.subarray(0, Math.min(chunk.length, total - sent))
      sent += piece.length
      this.push(piece)
    },
  })
}

function failingAfter(bytes: number): Readable {
  let sent = false
  return new Readable({
    read() {
      if (sent) {
        setImmediate(() => this.destroy(new Error('source read failed')))
        return
      }
      sent = true
      this.push(randomBytes(bytes))
    },
  })
}

let fx: CacacheFixture
beforeEach(async () => {
  fx = await createCacacheFixture()
})
afterEach(async () => {
  vi.restoreAllMocks()
  await fx.cleanup()
})

describe('on-disk format', () => {
  it('writes content under content-v2/sha256 and the key under index-v5', async () => {
    const bytes = Buffer.from('console.log("original")\n')
    const { integrity, size } = await fx.store.put(KEY_A, bytes)

    expect(integrity).toBe(ssri.fromData(bytes, { algorithms: ['sha256'] }).toString())
    expect(integrity).toMatch(/^sha256-[A-Za-z0-9+/]+=*$/)
    expect(size).toBe(bytes.length)

    const hex = createHash('sha256').update(bytes).digest('hex')
    const contentFile = join(
      fx.cachePath,
      'content-v2',
      'sha256',
      hex.slice(0, 2),
      hex.slice(2, 4),
      hex.slice(4),
    )
    expect(contentPathFor(fx.cachePath, integrity)).toBe(contentFile)
    expect(await readFile(contentFile)).toEqual(bytes)

    const bucket = indexPathFor(fx.cachePath, KEY_A)
    expect(relative(fx.cachePath, bucket).split(sep)[0]).toBe('index-v5')
    const lines = (await readFile(bucket, 'utf8')).split('\n').filter(Boolean)
    expect(lines).toHaveLength(1)
    const [hash, json] = (lines[0] ?? '').split('\t')
    expect(hash).toBe(
      createHash('sha1')
        .update(json ?? '')
        .digest('hex'),
    )
    expect(JSON.parse(json ?? '')).toMatchObject({ key: KEY_A, integrity, size })
  })

  it('gives streams the same integrity as ssri does for the same bytes', async () => {
    const bytes = randomBytes(1_000_003)
    const { integrity } = await fx.store.put(
      KEY_A,
      Readable.from([bytes.subarray(0, 7), bytes.subarray(7)]),
    )
    expect(integrity).toBe(ssri.fromData(bytes, { algorithms: ['sha256'] }).toString())
  })

  it('stores identical bytes once', async () => {
    const bytes = Buffer.from('same bytes')
    const a = await fx.store.put(KEY_A, bytes)
    const b = await fx.store.put(KEY_B, Readable.from([bytes]))
    expect(b).toEqual(a)
    const shards = await readdir(join(fx.cachePath, 'content-v2', 'sha256'))
    expect(shards).toHaveLength(1)
  })

  it('round-trips an empty stream (which plain cacache.put.stream refuses)', async () => {
    const { integrity, size } = await fx.store.put(KEY_A, Readable.from([]))
    expect(size).toBe(0)
    expect(integrity).toBe(sha256Integrity(''))
    expect((await readAll((await fx.store.open(KEY_A, integrity)) as Readable)).length).toBe(0)
  })

  it('leaves no scratch or trash files behind', async () => {
    const bytes = Buffer.from('scratch check')
    await fx.store.put(KEY_A, bytes)
    await fx.store.put(KEY_B, Readable.from([bytes]))
    await fx.store.remove(KEY_A, { freeContent: true })
    await fx.store.remove(KEY_B, { freeContent: true })
    expect(await scratchFiles(fx.cachePath)).toEqual([])
  })
})

describe('integrity on read', () => {
  it('fails the stream with INTEGRITY_MISMATCH when one byte on disk is flipped', async () => {
    const bytes = randomBytes(200_000)
    const { integrity } = await fx.store.put(KEY_A, bytes)
    const file = contentPathFor(fx.cachePath, integrity)
    const onDisk = await readFile(file)
    onDisk[123_456] = (onDisk[123_456] ?? 0) ^ 0x01
    await writeFile(file, onDisk)

    const failure = await readFailure(await fx.store.open(KEY_A, integrity))
    expect(isPatchBackupError(failure, 'INTEGRITY_MISMATCH')).toBe(true)
  })

  it('fails the stream with INTEGRITY_MISMATCH when the content file is truncated', async () => {
    const { integrity } = await fx.store.put(KEY_A, randomBytes(100_000))
    await fx.truncate(integrity)
    const failure = await readFailure(await fx.store.open(KEY_A, integrity))
    expect(isPatchBackupError(failure, 'INTEGRITY_MISMATCH')).toBe(true)
  })

  it('fails the stream when the content file was emptied', async () => {
    const { integrity } = await fx.store.put(KEY_A, Buffer.from('not empty'))
    await writeFile(contentPathFor(fx.cachePath, integrity), '')
    const failure = await readFailure(await fx.store.open(KEY_A, integrity))
    expect(isPatchBackupError(failure, 'INTEGRITY_MISMATCH')).toBe(true)
  })

  it('reads by digest: the key does not matter', async () => {
    const bytes = Buffer.from('content addressed')
    const { integrity } = await fx.store.put(KEY_A, bytes)
    expect(await readAll((await fx.store.open('some other key', integrity)) as Readable)).toEqual(
      bytes,
    )
  })

  it('repairs a truncated content file when the same bytes are put again', async () => {
    const bytes = randomBytes(50_000)
    const { integrity } = await fx.store.put(KEY_A, bytes)
    await fx.truncate(integrity)
    await fx.store.put(KEY_B, bytes)
    expect(await readAll((await fx.store.open(KEY_A, integrity)) as Readable)).toEqual(bytes)
  })

  it('opens nothing for a malformed digest and rejects an unsupported algorithm', async () => {
    await expect(fx.store.open(KEY_A, 'sha256-AAAA')).resolves.toBeUndefined()
    const failure = await fx.store
      .open(KEY_A, 'md5-1B2M2Y8AsgTpgAmY7PhCfg==')
      .catch((e: unknown) => e)
    expect(isPatchBackupError(failure, 'INTEGRITY_MISMATCH')).toBe(true)
  })
})

describe('remove', () => {
  it('frees the content file on disk when the last key goes', async () => {
    const { integrity } = await fx.store.put(KEY_A, Buffer.from('only mine'))
    const file = contentPathFor(fx.cachePath, integrity)
    expect(existsSync(file)).toBe(true)
    await expect(fx.store.remove(KEY_A, { freeContent: true })).resolves.toBe(true)
    expect(existsSync(file)).toBe(false)
    expect(existsSync(indexPathFor(fx.cachePath, KEY_A))).toBe(false)
  })

  it('keeps the content while another key shares it', async () => {
    const bytes = Buffer.from('shared')
    const { integrity } = await fx.store.put(KEY_A, bytes)
    await fx.store.put(KEY_B, bytes)
    await fx.store.remove(KEY_A, { freeContent: true })
    expect(existsSync(contentPathFor(fx.cachePath, integrity))).toBe(true)
    expect(await isContentReferenced(fx.cachePath, integrity)).toBe(true)
    await fx.store.remove(KEY_B, { freeContent: true })
    expect(existsSync(contentPathFor(fx.cachePath, integrity))).toBe(false)
  })

  it('keeps the content without freeContent, and deletes the bucket instead of appending a tombstone', async () => {
    const { integrity } = await fx.store.put(KEY_A, Buffer.from('kept'))
    await expect(fx.store.remove(KEY_A)).resolves.toBe(true)
    expect(existsSync(indexPathFor(fx.cachePath, KEY_A))).toBe(false)
    expect(existsSync(contentPathFor(fx.cachePath, integrity))).toBe(true)
    await expect(fx.store.has(KEY_A)).resolves.toBe(false)
    await expect(fx.store.remove(KEY_A)).resolves.toBe(false)
  })

  it('says true once for two concurrent removes of one key', async () => {
    await fx.store.put(KEY_A, Buffer.from('once'))
    const results = await Promise.all([fx.store.remove(KEY_A), fx.store.remove(KEY_A)])
    expect(results.sort()).toEqual([false, true])
  })

  it('put re-links its content when a remover freed it between writing content and the index entry', async () => {
    const bytes = Buffer.from('freed under our feet')
    const integrity = sha256Integrity(bytes)
    await fx.store.put(KEY_A, bytes)
    await fx.store.remove(KEY_A) // content stays, unreferenced
    const append = indexEntries.append
    vi.spyOn(indexEntries, 'append').mockImplementationOnce(async (...args) => {
      // A whole remove protocol runs after put found the content present and before its entry lands.
      expect(await freeContentIfUnreferenced(fx.cachePath, integrity)).toBe(true)
      expect(existsSync(contentPathFor(fx.cachePath, integrity))).toBe(false)
      return append(...args)
    })
    await fx.store.put(KEY_B, bytes)
    expect(indexEntries.append).toHaveBeenCalled()
    expect(existsSync(contentPathFor(fx.cachePath, integrity))).toBe(true)
    expect(await readAll((await fx.store.open(KEY_B, integrity)) as Readable)).toEqual(bytes)
  })

  it('remove puts parked content back when a put landed between its two reference checks', async () => {
    const bytes = Buffer.from('parked and restored')
    const integrity = sha256Integrity(bytes)
    await fx.store.put(KEY_A, bytes)
    const other = createCacacheStore({ path: fx.cachePath })
    const check = references.referencedByIndex
    vi.spyOn(references, 'referencedByIndex').mockImplementationOnce(async (...args) => {
      // The first check sees no reference; a put of the same bytes completes right after it,
      // before the remover parks the content.
      const found = await check(...args)
      await other.put(KEY_B, bytes)
      return found
    })
    await fx.store.remove(KEY_A, { freeContent: true })
    expect(references.referencedByIndex).toHaveBeenCalledTimes(2)
    expect(existsSync(contentPathFor(fx.cachePath, integrity))).toBe(true)
    expect(await scratchFiles(fx.cachePath)).toEqual([])
    expect(await readAll((await fx.store.open(KEY_B, integrity)) as Readable)).toEqual(bytes)
  })

  it('remove puts parked content back when a put landed between its two scans (store without a reference index)', async () => {
    const bytes = Buffer.from('parked and restored, scanned')
    const integrity = sha256Integrity(bytes)
    await cacache.put(fx.cachePath, KEY_A, bytes, { algorithms: ['sha256'] })
    const other = createCacacheStore({ path: fx.cachePath })
    // A read-only reference index: every check falls back to scanning cacache's own index.
    vi.spyOn(references, 'ensureComplete').mockResolvedValue(false)
    const lsStream = cacache.ls.stream
    vi.spyOn(cacache.ls, 'stream').mockImplementationOnce((cachePath: string) => {
      async function* firstScan() {
        const entries = await lsStream(cachePath).collect()
        await other.put(KEY_B, bytes)
        yield* entries
      }
      return Readable.from(firstScan()) as unknown as ReturnType<typeof lsStream>
    })
    await fx.store.remove(KEY_A, { freeContent: true })
    expect(cacache.ls.stream).toHaveBeenCalledTimes(2)
    expect(existsSync(contentPathFor(fx.cachePath, integrity))).toBe(true)
    expect(await readAll((await fx.store.open(KEY_B, integrity)) as Readable)).toEqual(bytes)
  })

  it('lets readers read content a remover has parked for a moment', async () => {
    const bytes = Buffer.from('parked')
    const integrity = sha256Integrity(bytes)
    await fx.store.put(KEY_A, bytes)
    const parked = join(
      fx.cachePath,
      'tmp',
      `patch-backup-trash-sha256-${createHash('sha256').update(bytes).digest('hex')}-x`,
    )
    await mkdir(join(fx.cachePath, 'tmp'), { recursive: true })
    await rename(contentPathFor(fx.cachePath, integrity), parked)
    await expect(fx.store.has(KEY_A)).resolves.toBe(true)
    expect(await readAll((await fx.store.open(KEY_A, integrity)) as Readable)).toEqual(bytes)
  })

  it('never frees content a concurrent put of another key needs (50 rounds)', async () => {
    const bytes = randomBytes(10_000)
    for (let round = 0; round < 50; round++) {
      const { integrity } = await fx.store.put(KEY_A, bytes)
      await Promise.all([fx.store.remove(KEY_A, { freeContent: true }), fx.store.put(KEY_B, bytes)])
      expect(existsSync(contentPathFor(fx.cachePath, integrity)), `round ${round}`).toBe(true)
      await expect(fx.store.has(KEY_B)).resolves.toBe(true)
      expect(await readAll((await fx.store.open(KEY_B, integrity)) as Readable)).toEqual(bytes)
      await fx.store.remove(KEY_B, { freeContent: true })
      expect(existsSync(contentPathFor(fx.cachePath, integrity)), `round ${round}`).toBe(false)
    }
    expect(await scratchFiles(fx.cachePath)).toEqual([])
  })

  it('never frees content a put through a second store instance needs (as another process would)', async () => {
    const other = createCacacheStore({ path: fx.cachePath })
    const bytes = randomBytes(4_000)
    const integrity = sha256Integrity(bytes)
    const churn = async (store: typeof other, prefix: string) => {
      for (let i = 0; i < 40; i++) {
        const key = `${prefix}:${i}`
        await store.put(key, bytes)
        if (!(await store.has(key))) throw new Error(`${key} lost its content right after put`)
        const read = await store.open(key, integrity)
        if (!read || !(await readAll(read)).equals(bytes))
          throw new Error(`${key} could not be read back`)
        await store.remove(key, { freeContent: true })
      }
    }
    await Promise.all([churn(fx.store, 'one'), churn(other, 'two'), churn(other, 'three')])
    expect(existsSync(contentPathFor(fx.cachePath, integrity))).toBe(false)
  })

  const built = fileURLToPath(new URL('../dist/index.js', import.meta.url))
  it.skipIf(!existsSync(built))('never frees content a put in another process needs', async () => {
    const bytes = Buffer.from('shared across processes\n'.repeat(200))
    const integrity = sha256Integrity(bytes)
    const rounds = 60
    const script = `
      import { createCacacheStore } from ${JSON.stringify(built)}
      const [cachePath, rounds, b64] = process.argv.slice(1)
      const bytes = Buffer.from(b64, 'base64')
      const store = createCacacheStore({ path: cachePath })
      const read = async (s) => { const c = []; for await (const x of s) c.push(x); return Buffer.concat(c) }
      for (let i = 0; i < Number(rounds); i++) {
        const key = 'child:' + i
        const { integrity } = await store.put(key, bytes)
        if (!(await store.has(key))) throw new Error(key + ' lost its content right after put')
        const s = await store.open(key, integrity)
        if (!s || !(await read(s)).equals(bytes)) throw new Error(key + ' could not be read back')
        await store.remove(key, { freeContent: true })
      }
    `
    const child = spawn(
      process.execPath,
      ['--input-type=module', '-e', script, fx.cachePath, String(rounds), bytes.toString('base64')],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    )
    let stderr = ''
    child.stderr.on('data', (d) => {
      stderr += d
    })
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve))
    try {
      for (let i = 0; i < rounds; i++) {
        const key = `parent:${i}`
        await fx.store.put(key, bytes)
        await expect(fx.store.has(key)).resolves.toBe(true)
        expect(await readAll((await fx.store.open(key, integrity)) as Readable)).toEqual(bytes)
        await fx.store.remove(key, { freeContent: true })
      }
    } finally {
      // Never leave the child writing into a dir the fixture is about to delete.
      if (child.exitCode === null && child.signalCode === null) {
        const settled = await Promise.race([
          exited,
          new Promise((r) => setTimeout(r, 20_000, 'late')),
        ])
        if (settled === 'late') child.kill()
      }
    }
    expect(await exited, stderr).toBe(0)
    expect(existsSync(contentPathFor(fx.cachePath, integrity))).toBe(false)
  })
})

describe('reference index', () => {
  it('records a ref per key next to cacache, and forgets it on remove', async () => {
    const bytes = Buffer.from('one ref per key')
    const { integrity } = await fx.store.put(KEY_A, bytes)
    await fx.store.put(KEY_B, bytes)
    expect(existsSync(refPathFor(fx.cachePath, integrity, KEY_A))).toBe(true)
    expect(existsSync(join(fx.cachePath, REFS_DIR, 'complete'))).toBe(true)
    await fx.store.remove(KEY_A, { freeContent: true })
    expect(existsSync(refPathFor(fx.cachePath, integrity, KEY_A))).toBe(false)
    expect(existsSync(contentPathFor(fx.cachePath, integrity))).toBe(true)
  })

  it('answers reference questions without scanning the cacache index', async () => {
    const { integrity } = await fx.store.put(KEY_A, Buffer.from('no scan'))
    for (let i = 0; i < 20; i++) await fx.store.put(`other:${i}`, Buffer.from(`other ${i}`))
    vi.spyOn(cacache.ls, 'stream')
    await fx.store.remove(KEY_A, { freeContent: true })
    expect(existsSync(contentPathFor(fx.cachePath, integrity))).toBe(false)
    expect(cacache.ls.stream).not.toHaveBeenCalled()
  })

  it('builds the index once on a store plain cacache wrote, keeping bytes its keys share', async () => {
    const shared = Buffer.from('shared with an old key')
    const own = Buffer.from('only the removed key')
    await cacache.put(fx.cachePath, 'old:shared', shared, { algorithms: ['sha256'] })
    await cacache.put(fx.cachePath, KEY_A, shared, { algorithms: ['sha256'] })
    await cacache.put(fx.cachePath, KEY_B, own, { algorithms: ['sha256'] })
    const store = createCacacheStore({ path: fx.cachePath })
    vi.spyOn(cacache.ls, 'stream')
    await store.remove(KEY_A, { freeContent: true })
    await store.remove(KEY_B, { freeContent: true })
    expect(cacache.ls.stream).toHaveBeenCalledTimes(1) // the one build
    expect(existsSync(contentPathFor(fx.cachePath, sha256Integrity(shared)))).toBe(true)
    expect(existsSync(contentPathFor(fx.cachePath, sha256Integrity(own)))).toBe(false)
    expect(existsSync(refPathFor(fx.cachePath, sha256Integrity(shared), 'old:shared'))).toBe(true)
  })

  it('does not let a stale ref keep bytes: the key was re-pointed by plain cacache', async () => {
    const first = Buffer.from('first bytes')
    const { integrity } = await fx.store.put(KEY_A, first)
    await fx.store.put(KEY_B, first)
    await cacache.put(fx.cachePath, KEY_A, Buffer.from('re-pointed'), { algorithms: ['sha256'] })
    expect(existsSync(refPathFor(fx.cachePath, integrity, KEY_A))).toBe(true) // stale now
    await fx.store.remove(KEY_B, { freeContent: true })
    expect(existsSync(contentPathFor(fx.cachePath, integrity))).toBe(false)
  })

  it('a put keeps its ref when a remove of the same key (another process) unlinks it mid-put', async () => {
    const bytes = Buffer.from('same key, two processes')
    const integrity = sha256Integrity(bytes)
    await fx.store.put(KEY_A, bytes)
    const insert = cacache.index.insert
    vi.spyOn(cacache.index, 'insert').mockImplementationOnce(async (...args) => {
      // The other process's remove: bucket gone, ref unlinked, its re-check sees no entry yet.
      await rm(indexPathFor(fx.cachePath, KEY_A), { force: true }) // rm.entry's removeFully
      await references.remove(fx.cachePath, integrity, KEY_A)
      return insert(...args)
    })
    await fx.store.put(KEY_A, bytes)
    expect(existsSync(refPathFor(fx.cachePath, integrity, KEY_A))).toBe(true)
    await fx.store.put(KEY_B, bytes)
    await fx.store.remove(KEY_B, { freeContent: true })
    expect(await readAll((await fx.store.open(KEY_A, integrity)) as Readable)).toEqual(bytes)
  })
})

describe('source errors', () => {
  it('rejects put with STORE_ERROR carrying the source error, and leaves no index entry', async () => {
    const failure = await fx.store.put(KEY_A, failingAfter(100_000)).catch((e: unknown) => e)
    expect(isPatchBackupError(failure, 'STORE_ERROR')).toBe(true)
    expect((failure as Error).cause).toMatchObject({ message: 'source read failed' })
    await expect(fx.store.has(KEY_A)).resolves.toBe(false)
    expect(await cacache.get.info(fx.cachePath, KEY_A)).toBeNull()
    expect(existsSync(indexPathFor(fx.cachePath, KEY_A))).toBe(false)
    expect(await scratchFiles(fx.cachePath)).toEqual([])
  })

  it('reports an unusable store directory as STORE_ERROR', async () => {
    const blocked = join(fx.cachePath, 'blocked')
    await mkdir(fx.cachePath, { recursive: true })
    await writeFile(blocked, 'a file where a directory should be')
    const store = createCacacheStore({ path: blocked })
    const failure = await store.put(KEY_A, Buffer.from('x')).catch((e: unknown) => e)
    expect(isPatchBackupError(failure, 'STORE_ERROR')).toBe(true)
  })

  it('refuses to be created without a path', () => {
    expect(() => createCacacheStore({ path: '' })).toThrow(
      expect.objectContaining({ code: 'INVALID_OPTIONS' }),
    )
  })
})

describe('compatibility with plain cacache', () => {
  it('reads, checks and removes what plain cacache.put wrote (sha256)', async () => {
    const bytes = Buffer.from('written by the old code')
    const written = await cacache.put(fx.cachePath, KEY_A, bytes, { algorithms: ['sha256'] })
    // cacache.put resolves an ssri Integrity object (typed as string); stringify it.
    const integrity = String(written)
    expect(integrity).toBe(sha256Integrity(bytes))

    await expect(fx.store.has(KEY_A)).resolves.toBe(true)
    expect(await readAll((await fx.store.open(KEY_A, integrity)) as Readable)).toEqual(bytes)
    const keys: string[] = []
    for await (const key of fx.store.keys('socket:patch:backup:')) keys.push(key)
    expect(keys).toEqual([KEY_A])
    await expect(fx.store.remove(KEY_A, { freeContent: true })).resolves.toBe(true)
    expect(await cacache.get.info(fx.cachePath, KEY_A)).toBeNull()
    expect(await cacache.get.hasContent(fx.cachePath, integrity)).toBe(false)
  })

  it('reads what plain cacache.put wrote with its default sha512', async () => {
    const bytes = Buffer.from('sha512 by default')
    const integrity = String(await cacache.put(fx.cachePath, KEY_A, bytes))
    expect(integrity.startsWith('sha512-')).toBe(true)
    await expect(fx.store.has(KEY_A)).resolves.toBe(true)
    expect(await readAll((await fx.store.open(KEY_A, integrity)) as Readable)).toEqual(bytes)
  })

  it('sees a tombstone written by plain cacache.rm.entry as a removed key', async () => {
    await fx.store.put(KEY_A, Buffer.from('x'))
    await cacache.rm.entry(fx.cachePath, KEY_A)
    await expect(fx.store.has(KEY_A)).resolves.toBe(false)
    await expect(fx.store.remove(KEY_A)).resolves.toBe(false)
  })

  it('writes what plain cacache.get, get.stream and get.info read', async () => {
    const bytes = randomBytes(70_000)
    const { integrity, size } = await fx.store.put(KEY_A, Readable.from([bytes]))
    const got = await cacache.get(fx.cachePath, KEY_A)
    expect(got.data.equals(bytes)).toBe(true)
    expect(got.integrity).toBe(integrity)
    expect(got.size).toBe(size)
    expect((await cacache.get.stream(fx.cachePath, KEY_A).concat()).equals(bytes)).toBe(true)
    expect((await cacache.get.byDigest(fx.cachePath, integrity)).equals(bytes)).toBe(true)
    expect(await cacache.get.info(fx.cachePath, KEY_A)).toMatchObject({
      key: KEY_A,
      integrity,
      size,
      path: contentPathFor(fx.cachePath, integrity),
    })
  })

  it('writes index lines for buffers (the synchronous put) that plain cacache reads as its own', async () => {
    const bytes = randomBytes(4096)
    const { integrity } = await fx.store.put(KEY_B, bytes)
    const got = await cacache.get(fx.cachePath, KEY_B)
    expect(got.data.equals(bytes)).toBe(true)
    expect(got.integrity).toBe(integrity)
    const listed = await cacache.ls(fx.cachePath)
    expect(listed[KEY_B]).toMatchObject({ key: KEY_B, integrity, size: 4096 })
    // Byte for byte the line cacache's own insert appends: a newline, sha1 of the JSON, a tab, the JSON.
    const line = (await readFile(indexPathFor(fx.cachePath, KEY_B), 'utf8')).slice(1)
    const [hash, json] = line.split('\t') as [string, string]
    expect(createHash('sha1').update(json).digest('hex')).toBe(hash)
    expect(Object.keys(JSON.parse(json))).toEqual(['key', 'integrity', 'time', 'size'])
  })

  it('readWhole gives the checked bytes of a small content, and refuses damaged ones', async () => {
    const bytes = Buffer.from('small and whole')
    const { integrity } = await fx.store.put(KEY_A, bytes)
    expect(fx.store.readWhole?.(KEY_A, integrity, 1024)?.equals(bytes)).toBe(true)
    expect(fx.store.readWhole?.(KEY_A, integrity, 4)).toBeUndefined() // larger than asked: use open
    expect(
      fx.store.readWhole?.(KEY_A, sha256Integrity(Buffer.from('absent')), 1024),
    ).toBeUndefined()
    await writeFile(contentPathFor(fx.cachePath, integrity), 'small and WHOLE')
    let thrown: unknown
    try {
      fx.store.readWhole?.(KEY_A, integrity, 1024)
    } catch (error) {
      thrown = error
    }
    expect(isPatchBackupError(thrown, 'INTEGRITY_MISMATCH')).toBe(true)
  })

  it('a fifo where an index bucket goes is a STORE_ERROR at once, not a hung process', async () => {
    const bucket = indexPathFor(fx.cachePath, KEY_A)
    await mkdir(dirname(bucket), { recursive: true })
    execFileSync('mkfifo', [bucket])
    const error = await fx.store.put(KEY_A, Buffer.from('x')).then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(isPatchBackupError(error, 'STORE_ERROR')).toBe(true)
  })

  it('readWhole leaves a fifo in place of a content file to open (never blocks on it)', async () => {
    const bytes = Buffer.from('a fifo took its place')
    const { integrity } = await fx.store.put(KEY_A, bytes)
    const file = contentPathFor(fx.cachePath, integrity)
    await rm(file)
    execFileSync('mkfifo', [file])
    expect(fx.store.readWhole?.(KEY_A, integrity, 1024)).toBeUndefined()
  })

  it('passes cacache.verify: nothing bad, nothing to reclaim', async () => {
    const shared = Buffer.from('shared')
    await fx.store.put(KEY_A, shared)
    await fx.store.put(KEY_B, shared)
    await fx.store.put(`${KEY_A}:2`, Buffer.from('other'))
    await fx.store.remove(KEY_A, { freeContent: true })
    await fx.store.remove(`${KEY_A}:2`, { freeContent: true })
    const stats = await cacache.verify(fx.cachePath)
    expect(stats).toMatchObject({
      badContentCount: 0,
      reclaimedCount: 0,
      missingContent: 0,
      verifiedContent: 1,
    })
    expect(
      await readAll((await fx.store.open(KEY_B, sha256Integrity(shared))) as Readable),
    ).toEqual(shared)
  })
})

describe('streaming', () => {
  it('streams 64 MiB through put and open without holding the file in memory', async () => {
    const total = 64 * 1024 * 1024
    const block = randomBytes(256 * 1024)
    const expected = createHash('sha256')
    for (let sent = 0; sent < total; sent += block.length) expected.update(block)
    const integrity = `sha256-${expected.digest('base64')}`

    // Collect garbage every 4 MiB so RSS shows what is held, not what the GC has not got to yet.
    setFlagsFromString('--expose-gc')
    const gc = runInNewContext('gc') as () => void
    gc()
    const baseline = process.memoryUsage().rss
    let peak = baseline
    let calls = 0
    const sample = () => {
      if (++calls % 16 === 0) gc()
      peak = Math.max(peak, process.memoryUsage().rss)
    }
    const stored = await fx.store.put(KEY_A, generated(total, block, sample))
    expect(stored).toEqual({ integrity, size: total })
    expect((await stat(contentPathFor(fx.cachePath, integrity))).size).toBe(total)

    const read = await fx.store.open(KEY_A, integrity)
    if (!read) throw new Error('expected a stream')
    const hash = createHash('sha256')
    let bytes = 0
    for await (const chunk of read) {
      hash.update(chunk)
      bytes += chunk.length
      sample()
    }
    expect(bytes).toBe(total)
    expect(`sha256-${hash.digest('base64')}`).toBe(integrity)
    // Half the file: holding it would take all of it. (A quarter held on Node 20; the V8 of Node 22
    // and 24 keeps a larger young generation committed, 18-20 MiB here.)
    expect(peak - baseline).toBeLessThan(total / 2)
  })
})
