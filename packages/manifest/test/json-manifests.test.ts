import { existsSync } from 'node:fs'
import { chmod, mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { isPatchBackupError, type PatchManifest } from '@patch-backup/core'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createJsonManifestRepository, type JsonManifestRepository } from '../src/index.js'
import { addFile, assertBuilt, manifestWith, spawnWorker, tempRoot } from './helpers.js'

/** The example manifest of the seed's documentation, byte for byte. */
const SEED_TEXT = `{
  "uuid": "abc-123",
  "patchedAt": "2025-01-14T12:00:00Z",
  "files": {
    "node_modules/lodash/index.js": {
      "integrity": "sha256-qUiQTy8PR5uPgZdpSzAYSw0u0cHNKh7A+4XSmaGSpEc=",
      "size": 12345,
      "backedUpAt": "2025-01-14T12:00:00Z",
      "originalPath": "node_modules/lodash/index.js"
    }
  }
}
`

/**
 * After a call: the lock is kept a few milliseconds for a next call (lock-keeper.ts), and the
 * replaced manifest's second name is unlinked on the thread pool (atomic-write.ts); both are gone
 * well within this.
 */
const settled = () => sleep(50)

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => {
      throw new Error('expected a rejection')
    },
    (error: unknown) => error,
  )
}

let dir: string
let root: string
let dispose: () => Promise<void>
let repo: JsonManifestRepository

beforeEach(async () => {
  ;({ dir, root, dispose } = await tempRoot())
  repo = createJsonManifestRepository({ dir })
})
afterEach(async () => {
  await dispose()
})

describe('file format', () => {
  it('writes the seed format exactly: 2-space JSON, final newline, one <uuid>.json', async () => {
    await repo.update('abc-123', () => manifestWith('abc-123', ['node_modules/lodash/index.js']))
    await expect(readFile(join(dir, 'abc-123.json'), 'utf8')).resolves.toBe(SEED_TEXT)
    await settled()
    await expect(readdir(dir)).resolves.toEqual(['abc-123.json'])
  })

  it('loads a manifest that has only the seed fields, however it is laid out', async () => {
    await mkdir(dir, { recursive: true })
    await writeFile(join(dir, 'abc-123.json'), SEED_TEXT)
    await writeFile(
      join(dir, 'compact.json'),
      JSON.stringify({ ...JSON.parse(SEED_TEXT), uuid: 'compact' }),
    )
    const seed = JSON.parse(SEED_TEXT) as PatchManifest
    await expect(repo.get('abc-123')).resolves.toEqual(seed)
    await expect(repo.get('compact')).resolves.toEqual({ ...seed, uuid: 'compact' })
    await expect(repo.list()).resolves.toEqual(['abc-123', 'compact'])
  })

  it('keeps fields it does not know, at every level, through an update', async () => {
    const withExtras = {
      ...JSON.parse(SEED_TEXT),
      tool: { name: 'socket', version: 2 },
      notes: ['kept'],
    }
    withExtras.files['node_modules/lodash/index.js'].patchedIntegrity = 'sha256-AAAA'
    await mkdir(dir, { recursive: true })
    await writeFile(join(dir, 'abc-123.json'), JSON.stringify(withExtras))
    await repo.update('abc-123', addFile('abc-123', 'node_modules/lodash/fp.js'))
    const onDisk = JSON.parse(await readFile(join(dir, 'abc-123.json'), 'utf8'))
    expect(onDisk.tool).toEqual({ name: 'socket', version: 2 })
    expect(onDisk.notes).toEqual(['kept'])
    expect(onDisk.files['node_modules/lodash/index.js'].patchedIntegrity).toBe('sha256-AAAA')
    expect(Object.keys(onDisk.files)).toEqual([
      'node_modules/lodash/index.js',
      'node_modules/lodash/fp.js',
    ])
  })

  it('refuses to write what it could not read back, and leaves the file alone', async () => {
    await repo.update('abc-123', () => manifestWith('abc-123', ['a.js']))
    const before = await readFile(join(dir, 'abc-123.json'), 'utf8')
    for (const bad of [
      { uuid: 'other', patchedAt: 'x', files: {} },
      { uuid: 'abc-123', patchedAt: 'x', files: [] },
      { uuid: 'abc-123', patchedAt: 'x', files: { 'a.js': { integrity: 'sha256-x', size: '1' } } },
    ]) {
      const error = await rejection(repo.update('abc-123', () => bad as unknown as PatchManifest))
      expect(isPatchBackupError(error, 'INVALID_MANIFEST')).toBe(true)
    }
    await expect(readFile(join(dir, 'abc-123.json'), 'utf8')).resolves.toBe(before)
  })
})

describe('directory', () => {
  it('is not created by construction, get, list or delete, only by the first write', async () => {
    await repo.get('abc-123')
    await expect(repo.list()).resolves.toEqual([])
    await expect(repo.delete('abc-123')).resolves.toBe(false)
    await repo.update('abc-123', () => undefined)
    expect(existsSync(dir)).toBe(true)
    await settled()
    await expect(readdir(dir)).resolves.toEqual([])
  })

  it('rejects a bad uuid before touching the disk', async () => {
    for (const call of [
      () => repo.get('../escape'),
      () => repo.update('../escape', () => manifestWith('x', [])),
      () => repo.delete('a/b'),
    ]) {
      expect(isPatchBackupError(await rejection(call()), 'INVALID_UUID')).toBe(true)
    }
    expect(existsSync(dir)).toBe(false)
    expect(existsSync(join(root, '_patches', 'escape.json'))).toBe(false)
  })
})

describe('atomic writes', () => {
  it('replaces the file by rename and leaves no temp or lock behind', async () => {
    await repo.update('abc-123', () => manifestWith('abc-123', ['a.js']))
    const first = await stat(join(dir, 'abc-123.json'))
    await repo.update('abc-123', addFile('abc-123', 'b.js'))
    const second = await stat(join(dir, 'abc-123.json'))
    expect(second.ino).not.toBe(first.ino)
    await settled()
    await expect(readdir(dir)).resolves.toEqual(['abc-123.json'])
  })

  it('skips the write when the updater returns the object it was given', async () => {
    await repo.update('abc-123', () => manifestWith('abc-123', ['a.js']))
    const before = await stat(join(dir, 'abc-123.json'))
    const result = await repo.update('abc-123', (current) => current)
    expect(result).toEqual(manifestWith('abc-123', ['a.js']))
    expect((await stat(join(dir, 'abc-123.json'))).ino).toBe(before.ino)
  })

  it('hands back a copy of what it wrote', async () => {
    const manifest = manifestWith('abc-123', ['a.js'])
    const result = await repo.update('abc-123', () => manifest)
    expect(result).toEqual(manifest)
    expect(result).not.toBe(manifest)
  })

  it('keeps the previous manifest and removes the temp file when the write fails (file size limit)', async () => {
    assertBuilt()
    await repo.update('abc-123', () => manifestWith('abc-123', ['a.js']))
    const before = await readFile(join(dir, 'abc-123.json'), 'utf8')
    // RLIMIT_FSIZE 0 makes every write to a regular file fail with EFBIG, even for root: a real
    // failure of the temp write, after the lock was taken. The worker listens for SIGXFSZ,
    // otherwise proper-lockfile's signal-exit re-raises it and the process dies instead.
    const worker = spawnWorker(['add', dir, 'abc-123', 'child', '1'], 'ulimit -f 0', {
      PB_LISTEN_SIGXFSZ: '1',
    })
    const { code } = await worker.exited
    expect(code).toBe(1)
    const { error } = JSON.parse(worker.output().trim())
    expect(error.code).toBe('MANIFEST_UNWRITABLE')
    expect(error.path).toBe(join(dir, 'abc-123.json'))
    expect(error.message).toContain(join(dir, 'abc-123.json'))
    await expect(readFile(join(dir, 'abc-123.json'), 'utf8')).resolves.toBe(before)
    await expect(readdir(dir)).resolves.toEqual(['abc-123.json'])
  })

  it.skipIf(process.getuid?.() === 0)(
    'keeps the previous manifest when the directory is read-only',
    async () => {
      await repo.update('abc-123', () => manifestWith('abc-123', ['a.js']))
      const before = await readFile(join(dir, 'abc-123.json'), 'utf8')
      await chmod(dir, 0o555)
      try {
        const error = await rejection(repo.update('abc-123', addFile('abc-123', 'b.js')))
        expect(isPatchBackupError(error, 'MANIFEST_UNWRITABLE')).toBe(true)
        await expect(readFile(join(dir, 'abc-123.json'), 'utf8')).resolves.toBe(before)
        await expect(readdir(dir)).resolves.toEqual(['abc-123.json'])
      } finally {
        await chmod(dir, 0o755)
      }
    },
  )

  it('reports MANIFEST_UNWRITABLE with the path when the directory is not a directory', async () => {
    await writeFile(join(root, 'file'), 'not a directory')
    const blocked = createJsonManifestRepository({ dir: join(root, 'file') })
    const error = await rejection(blocked.update('abc-123', () => manifestWith('abc-123', [])))
    expect(isPatchBackupError(error, 'MANIFEST_UNWRITABLE')).toBe(true)
    expect((error as Error).message).toContain(join(root, 'file'))
    expect((error as { cause?: { code?: string } }).cause?.code).toBe('ENOTDIR')
  })
})

describe('corrupt manifests', () => {
  const cases: [string, string][] = [
    ['truncated', SEED_TEXT.slice(0, 40)],
    ['empty', ''],
    ['not JSON', 'hello'],
    ['an array', '[]'],
    ['without files', '{ "uuid": "abc-123", "patchedAt": "x" }'],
    ['for another uuid', SEED_TEXT.replace('"abc-123"', '"xyz"')],
    ['with a bad entry', '{ "uuid": "abc-123", "patchedAt": "x", "files": { "a.js": 1 } }'],
  ]
  for (const [name, text] of cases) {
    it(`reports a manifest ${name} as MANIFEST_CORRUPT naming the file`, async () => {
      await mkdir(dir, { recursive: true })
      const path = join(dir, 'abc-123.json')
      await writeFile(path, text)
      const error = await rejection(repo.get('abc-123'))
      expect(isPatchBackupError(error, 'MANIFEST_CORRUPT')).toBe(true)
      expect((error as { path?: string }).path).toBe(path)
      expect((error as Error).message).toContain(path)
      expect((error as Error).message).toMatch(/delete it/)
    })
  }

  it('never lets an update overwrite a corrupt file; other uuids keep working; delete removes it', async () => {
    await repo.update('good', () => manifestWith('good', ['a.js']))
    const path = join(dir, 'abc-123.json')
    await writeFile(path, SEED_TEXT.slice(0, 40))
    const error = await rejection(repo.update('abc-123', () => manifestWith('abc-123', ['b.js'])))
    expect(isPatchBackupError(error, 'MANIFEST_CORRUPT')).toBe(true)
    await expect(readFile(path, 'utf8')).resolves.toBe(SEED_TEXT.slice(0, 40))
    await expect(repo.get('good')).resolves.toEqual(manifestWith('good', ['a.js']))
    await repo.update('good', addFile('good', 'b.js'))
    await expect(repo.list()).resolves.toEqual(['abc-123', 'good'])
    await expect(repo.delete('abc-123')).resolves.toBe(true)
    await expect(repo.list()).resolves.toEqual(['good'])
  })
})

describe('list', () => {
  it('reports only valid <uuid>.json names: no temp files, locks or strays', async () => {
    await repo.update('abc-123', () => manifestWith('abc-123', ['a.js']))
    await settled()
    await writeFile(join(dir, '.abc-123.json.4242.k3j4h5.tmp'), '{')
    await writeFile(join(dir, '.hidden.json'), '{}')
    await writeFile(join(dir, 'has space.json'), '{}')
    await writeFile(join(dir, 'notes.txt'), 'x')
    await writeFile(join(dir, 'abc-123.json.bak'), '{}')
    await mkdir(join(dir, 'abc-123.json.lock'))
    await mkdir(join(dir, 'zzz.json.lock'))
    await expect(repo.list()).resolves.toEqual(['abc-123'])
  })

  it('sorts', async () => {
    for (const uuid of ['b', 'C', 'a.1', 'a-1', 'a_1', '0']) {
      await repo.update(uuid, () => manifestWith(uuid, []))
    }
    await expect(repo.list()).resolves.toEqual(['0', 'C', 'a-1', 'a.1', 'a_1', 'b'])
  })
})

describe('concurrency in one process', () => {
  it('lands all of 100 concurrent updates', async () => {
    await Promise.all(
      Array.from({ length: 100 }, (_, i) => repo.update('busy', addFile('busy', `f${i}.js`))),
    )
    const manifest = await repo.get('busy')
    expect(Object.keys(manifest?.files ?? {})).toHaveLength(100)
    await settled()
    await expect(readdir(dir)).resolves.toEqual(['busy.json'])
  })

  it('lands every update from two repositories on the same directory', async () => {
    const other = createJsonManifestRepository({ dir })
    await Promise.all(
      Array.from({ length: 60 }, (_, i) =>
        (i % 2 ? repo : other).update('shared', addFile('shared', `f${i}.js`)),
      ),
    )
    expect(Object.keys((await repo.get('shared'))?.files ?? {})).toHaveLength(60)
  })

  it('runs updates of different uuids side by side', async () => {
    await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        repo.update(`p${i % 4}`, addFile(`p${i % 4}`, `f${i}.js`)),
      ),
    )
    for (let p = 0; p < 4; p++) {
      expect(Object.keys((await repo.get(`p${p}`))?.files ?? {})).toHaveLength(10)
    }
  })

  it('measures one uncontended update (lock, read, write temp, rename, unlock)', async () => {
    await repo.update('timed', addFile('timed', 'warm.js'))
    const runs = 200
    const started = performance.now()
    for (let i = 0; i < runs; i++) await repo.update('timed', addFile('timed', `f${i % 20}.js`))
    const average = (performance.now() - started) / runs
    console.log(`one uncontended update: ${average.toFixed(3)} ms (average of ${runs})`)
    expect(average).toBeLessThan(25)
  })
})
