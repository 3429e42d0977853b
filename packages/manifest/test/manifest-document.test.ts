import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, rmdirSync, writeFileSync } from 'node:fs'
import { readFile, rename, writeFile } from 'node:fs/promises'
import { setTimeout as sleep } from 'node:timers/promises'
import type { BackupInfo, PatchManifest } from '@patch-backup/core'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { createJsonManifestRepository, type JsonManifestRepository } from '../src/index.js'
import { ManifestDocument } from '../src/manifest-document.js'
import { tempRoot } from './helpers.js'

const seedText = (m: unknown) => `${JSON.stringify(m, null, 2)}\n`
/** The document of a file holding `text`, as the repository reads one. */
const readText = (text: string) =>
  ManifestDocument.read(Buffer.from(text), text, JSON.parse(text), 'p', 'p.json')

function entry(name: string, extra: Record<string, unknown> = {}): BackupInfo {
  return {
    integrity: `sha256-${Buffer.from(name).toString('base64')}`,
    size: name.length,
    backedUpAt: '2026-11-30T12:00:00.000Z',
    originalPath: name,
    mode: 0o644,
    ...extra,
  }
}

/** A small deterministic generator, so a failure names its seed. */
function random(seed: number) {
  let state = seed >>> 0
  return () => {
    state = (state * 1664525 + 1013904223) >>> 0
    return state / 2 ** 32
  }
}

const NAMES = [
  'a.js',
  'b/c.js',
  '0',
  '17',
  '__proto__',
  'ü/ñ.js',
  'quote"d.js',
  'new\nline',
  'x'.repeat(40),
]

describe('ManifestDocument', () => {
  it('writes the text JSON.stringify(manifest, null, 2) gives, through any sequence of appends and overwrites', () => {
    for (let seed = 1; seed <= 40; seed++) {
      const next = random(seed)
      const base: PatchManifest = {
        uuid: 'p',
        patchedAt: '2026-11-30T00:00:00.000Z',
        files: {},
        ...(next() < 0.5 && { projectRoot: '/home/me/app' }),
      }
      let document = ManifestDocument.from(base, 'p', 'p.json')
      let model: PatchManifest = structuredClone(base)
      for (let step = 0; step < 25; step++) {
        const batch = Array.from({ length: 1 + Math.floor(next() * 3) }, () => {
          const name =
            next() < 0.3
              ? (NAMES[Math.floor(next() * NAMES.length)] as string)
              : `node_modules/p/f${Math.floor(next() * 30)}.js`
          return entry(name, next() < 0.2 ? { patchedIntegrity: 'sha256-x', links: 2 } : {})
        })
        const overwrite = next() < 0.3
        const files = { ...model.files }
        for (const e of batch) {
          if (overwrite || !Object.hasOwn(files, e.originalPath)) {
            // As JSON.parse makes it: an own property, `__proto__` included.
            Object.defineProperty(files, e.originalPath, {
              value: e,
              enumerable: true,
              writable: true,
              configurable: true,
            })
          }
        }
        model = { ...model, files }
        document = document.withEntries(batch, overwrite, 'p.json') ?? document
        expect(document.text, `seed ${seed}, step ${step}`).toBe(seedText(model))
        expect(document.manifest).toEqual(JSON.parse(seedText(model)))
      }
    }
  })

  it('keeps fields after files, and anything an update function returns, as JSON.stringify would', () => {
    const value = {
      uuid: 'p',
      patchedAt: '2026-11-30T00:00:00.000Z',
      files: { 'a.js': entry('a.js'), 'skip.js': undefined },
      lastRestore: { at: new Date(0), files: { 'a.js': null } },
      dropped: () => 1,
    }
    const document = ManifestDocument.from(value, 'p', 'p.json')
    expect(document.text).toBe(seedText(value))
    const more = document.withEntries([entry('b.js')], false, 'p.json')
    expect(more?.text).toBe(
      seedText({ ...value, files: { 'a.js': entry('a.js'), 'b.js': entry('b.js') } }),
    )
  })

  it('hands out frozen manifests, and copies of what callers pass in', () => {
    const given = entry('a.js')
    const document = ManifestDocument.from(
      { uuid: 'p', patchedAt: 't', files: { 'a.js': given } },
      'p',
      'p.json',
    )
    given.size = 999 // the caller's object is not the one kept
    expect(document.entry('a.js')?.size).toBe(4)
    expect(Object.isFrozen(document.manifest)).toBe(true)
    expect(Object.isFrozen(document.manifest.files)).toBe(true)
    expect(Object.isFrozen(document.entry('a.js'))).toBe(true)
  })

  it('reads a file whole without serializing its entries, and writes on from it as JSON.stringify would', () => {
    for (let seed = 1; seed <= 30; seed++) {
      const next = random(seed)
      const files: Record<string, BackupInfo> = {}
      for (let i = 0; i < 10 + Math.floor(next() * 40); i++) {
        const name =
          next() < 0.2 ? (NAMES[Math.floor(next() * NAMES.length)] as string) : `f${i}.js`
        Object.defineProperty(files, name, {
          value: entry(name, next() < 0.3 ? { patchedIntegrity: 'sha256-x' } : {}),
          enumerable: true,
          writable: true,
          configurable: true,
        })
      }
      const model: PatchManifest = {
        uuid: 'p',
        patchedAt: '2026-11-30T00:00:00.000Z',
        files,
        ...(next() < 0.5 && { lastRestore: { at: 't', files: { 'a.js': null } } }),
      }
      const text = seedText(model)
      const stringify = vi.spyOn(JSON, 'stringify')
      const document = readText(text)
      // The whole, to compare with the file, and the fields after `files` (the tail): no entry.
      expect(stringify.mock.calls.length, `seed ${seed}`).toBeLessThanOrEqual(3)
      stringify.mockRestore()
      expect(document.text).toBe(text)
      expect(document.matches(Buffer.from(text))).toBe(true)
      expect(document.manifest).toEqual(JSON.parse(text))
      expect(Object.isFrozen(document.manifest.files)).toBe(true)
      const first = Object.keys(files)[0] as string
      expect(Object.isFrozen(document.entry(first))).toBe(true)
      const added = document.withEntries([entry('added.js')], false, 'p.json')
      const withAdded = { ...model, files: { ...files, 'added.js': entry('added.js') } }
      expect(added?.text, `seed ${seed}`).toBe(seedText(withAdded))
      const replaced = document.withEntries([entry(first, { size: 7 })], true, 'p.json')
      expect(JSON.parse(replaced?.text as string).files[first].size).toBe(7)
      expect(replaced?.text).toBe(
        seedText({ ...model, files: { ...files, [first]: entry(first, { size: 7 }) } }),
      )
      // An update function's result built from the read values, as the service's restores make.
      const updated = { ...document.manifest, lastRestore: { at: 'u', files: {} } }
      expect(ManifestDocument.from(updated, 'p', 'p.json').text).toBe(seedText(updated))
    }
  })

  it('reads a file in another spelling (indent, byte-order mark) as its canonical text', () => {
    const model = { uuid: 'p', patchedAt: 't', files: { 'a.js': entry('a.js') } }
    for (const text of [
      JSON.stringify(model, null, 4),
      JSON.stringify(model),
      `${seedText(model)} `,
    ]) {
      const document = readText(text)
      expect(document.text).toBe(seedText(model))
      expect(document.matches(Buffer.from(text))).toBe(false)
      expect(document.withEntries([entry('b.js')], false, 'p.json')?.text).toBe(
        seedText({ ...model, files: { ...model.files, 'b.js': entry('b.js') } }),
      )
    }
  })

  it('checks a top-level field it read as an entry when an update moves it under files', () => {
    const model = {
      uuid: 'p',
      patchedAt: 't',
      files: { 'a.js': entry('a.js') },
      lastRestore: { at: 'x', files: {} },
    }
    const text = seedText(model)
    const document = readText(text)
    const current = document.manifest
    expect(() =>
      ManifestDocument.from(
        { ...current, files: { ...current.files, 'bad.js': current.lastRestore } },
        'p',
        'p.json',
      ),
    ).toThrow(expect.objectContaining({ code: 'INVALID_MANIFEST' }))
  })

  it('keeps no byte of a file that is not UTF-8: the document is the canonical encoding', () => {
    const model = { uuid: 'p', patchedAt: 't', files: { 'a.js': entry('a.js') } }
    const good = Buffer.from(seedText(model))
    // A truncated 4-byte sequence: 3 bytes that decode to one U+FFFD, itself 3 bytes in UTF-8.
    const at = good.indexOf('"patchedAt": "t"') + '"patchedAt": "'.length
    const bytes = Buffer.concat([
      good.subarray(0, at),
      Buffer.from([0xf0, 0x9f, 0x98]),
      good.subarray(at + 1),
    ])
    const text = bytes.toString('utf8')
    const document = ManifestDocument.read(bytes, text, JSON.parse(text), 'p', 'p.json')
    expect(Buffer.concat(document.chunks()).equals(Buffer.from(seedText(document.manifest)))).toBe(
      true,
    )
    expect(document.matches(bytes)).toBe(false)
  })

  it('refuses an entry that would not read back, naming it', () => {
    const document = ManifestDocument.from({ uuid: 'p', patchedAt: 't', files: {} }, 'p', 'p.json')
    expect(() =>
      document.withEntries([{ ...entry('a.js'), size: Number.NaN }], false, 'p.json'),
    ).toThrow(/"files"\["a.js"\].size is not a non-negative number/)
    expect(() =>
      ManifestDocument.from(
        { uuid: 'p', patchedAt: 't', files: { x: { mode: 'rw' } } },
        'p',
        'p.json',
      ),
    ).toThrow(expect.objectContaining({ code: 'INVALID_MANIFEST' }))
  })
})

describe('the JSON repository keeps what it read only while the file is unchanged', () => {
  let root: Awaited<ReturnType<typeof tempRoot>>
  let repo: JsonManifestRepository
  beforeEach(async () => {
    root = await tempRoot()
    repo = createJsonManifestRepository({ dir: root.dir })
  })
  afterEach(() => root.dispose())

  const record = (name: string) =>
    repo.withLock('p', async (tx) => {
      await tx.record?.([entry(name)], {
        overwrite: false,
        init: () => ({ uuid: 'p', patchedAt: 't', files: {} }),
      })
    })

  it('sees a change another writer made, even one of the same size', async () => {
    await record('a.js')
    const path = repo.manifestPath('p')
    // Another process replaces the file with different bytes of exactly the same length.
    const text = await readFile(path, 'utf8')
    const edited = text
      .replace('"a.js": {', '"b.js": {')
      .replace('"originalPath": "a.js"', '"originalPath": "b.js"')
    expect(edited.length).toBe(text.length)
    writeFileSync(`${path}.other`, edited)
    await rename(`${path}.other`, path)
    await record('c.js')
    const files = Object.keys((await repo.get('p'))?.files ?? {})
    expect(files).toEqual(['b.js', 'c.js'])
  })

  it('sees a change written in place, as the seed wrote', async () => {
    await record('a.js')
    const path = repo.manifestPath('p')
    const manifest = JSON.parse(await readFile(path, 'utf8')) as PatchManifest
    manifest.files['z.js'] = entry('z.js')
    await writeFile(path, JSON.stringify(manifest, null, 2))
    await record('c.js')
    expect(Object.keys((await repo.get('p'))?.files ?? {})).toEqual(['a.js', 'z.js', 'c.js'])
    expect(await readFile(path, 'utf8')).toBe(seedText(await repo.get('p')))
  })

  it('inside a transaction current is frozen; update gives the function a copy it may change', async () => {
    await record('a.js')
    await repo.withLock('p', async (tx) => {
      expect(() => {
        ;(tx.current as PatchManifest).files['x.js'] = entry('x.js')
      }).toThrow(TypeError)
    })
    const next = await repo.update('p', (current) => {
      if (current) current.files['b.js'] = entry('b.js')
      return current
    })
    expect(Object.keys(next?.files ?? {})).toEqual(['a.js', 'b.js'])
    expect(Object.isFrozen(next)).toBe(false)
    expect(Object.keys((await repo.get('p'))?.files ?? {})).toEqual(['a.js', 'b.js'])
  })
})

describe('the patch lock kept a few milliseconds for the next call', () => {
  let root: Awaited<ReturnType<typeof tempRoot>>
  let repo: JsonManifestRepository
  beforeEach(async () => {
    root = await tempRoot()
    repo = createJsonManifestRepository({ dir: root.dir, lockTimeoutMs: 300 })
  })
  afterEach(() => root.dispose())

  const add = (name: string) =>
    repo.update('p', (current) => ({
      ...(current ?? { uuid: 'p', patchedAt: 't' }),
      files: { ...current?.files, [name]: entry(name) },
    }))

  it('is released once no call used it for a few milliseconds', async () => {
    await add('a.js')
    expect(existsSync(repo.lockPath('p'))).toBe(true) // kept for a next call
    await sleep(50)
    expect(existsSync(repo.lockPath('p'))).toBe(false)
  })

  it('is not reused once another process took it over: the next update waits for that one', async () => {
    await add('a.js')
    // Another process takes the lock over (as after a stale takeover), at a later moment.
    rmdirSync(repo.lockPath('p'))
    await sleep(1) // file timestamps tick every few ms: a new directory, not one of the same tick
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20)
    mkdirSync(repo.lockPath('p'))
    const error = await add('b.js').then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(error).toMatchObject({ code: 'LOCK_TIMEOUT' })
    expect(Object.keys((await repo.get('p'))?.files ?? {})).toEqual(['a.js'])
    expect(existsSync(repo.lockPath('p'))).toBe(true) // theirs: never removed by us
    rmdirSync(repo.lockPath('p'))
    await add('b.js')
    expect(Object.keys((await repo.get('p'))?.files ?? {})).toEqual(['a.js', 'b.js'])
  })
})

describe('a fifo where a manifest should be', () => {
  it('is refused as unreadable at once, without blocking the process', async () => {
    const root = await tempRoot()
    try {
      const repo = createJsonManifestRepository({ dir: root.dir })
      mkdirSync(root.dir, { recursive: true })
      execFileSync('mkfifo', [repo.manifestPath('p')])
      const error = await repo
        .withLock('p', async () => 'entered')
        .then(
          () => undefined,
          (e: unknown) => e,
        )
      expect(error).toMatchObject({ code: 'MANIFEST_UNREADABLE', path: repo.manifestPath('p') })
      expect(String((error as Error).message)).toContain('not a regular file')
    } finally {
      await root.dispose()
    }
  })
})
