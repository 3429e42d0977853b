import {
  link,
  lstat,
  mkdir,
  readdir,
  readFile,
  realpath,
  rm,
  symlink,
  writeFile,
} from 'node:fs/promises'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { isInside, type PatchBackups, type RestoreAllResult } from '@patch-backup/core'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { bytesOf, integrityOf } from './fixtures/content.mjs'
import { settle } from './support/outcome.js'
import { snapshotTree } from './support/tree.js'
import { createWorkspace, fromEnv, openStack, type Workspace } from './support/workspace.js'

const RUNS = fromEnv('PATCH_BACKUP_FUZZ_RUNS', 300)
const LONG = `${'x'.repeat(252)}.js` // 255 bytes: the longest name most file systems take
const TOO_LONG = 'y'.repeat(300)

let ws: Workspace
let backups: PatchBackups
let realProject: string
let outsideBefore: string[]
/** Integrities of every file outside the project: one showing up in a manifest means it was read. */
const outsideIntegrities = new Set<string>()
let baseEntries: string[]
let cases = 0
/** How the calls of the first property came out, so a run that only ever refuses is visible. */
const outcomes = new Map<string, number>()
const tally = (what: string) => outcomes.set(what, (outcomes.get(what) ?? 0) + 1)

/**
 * The scene: a project with plain files, unicode and 255-byte names, and symlinks that lead out
 * (to a sentinel directory holding files of the same names) or loop; the sentinel must stay
 * byte for byte the same whatever the service is asked.
 */
beforeAll(async () => {
  ws = await createWorkspace('hostile')
  const files = [
    'file.js',
    'sub/file.js',
    'sub/deep/file.js',
    'a/file.js',
    'ünï/файл.js',
    '日本/文件.js',
    `sub/${LONG}`,
    '~/file.js',
    'back\\slash.js',
  ]
  for (const [i, file] of files.entries()) {
    await mkdir(path.dirname(path.join(ws.project, file)), { recursive: true })
    await writeFile(path.join(ws.project, file), bytesOf(`inside-${i}`, 64 + i))
  }
  for (const [i, file] of [
    'secret.txt',
    'file.js',
    'sub/file.js',
    'sub/deep/file.js',
    'a/file.js',
  ].entries()) {
    await mkdir(path.dirname(path.join(ws.outside, file)), { recursive: true })
    const bytes = bytesOf(`outside-${i}`, 100 + i)
    await writeFile(path.join(ws.outside, file), bytes)
    outsideIntegrities.add(integrityOf(bytes))
  }
  await symlink('../outside', path.join(ws.project, 'out'))
  await symlink(ws.outside, path.join(ws.project, 'abs-out'))
  await symlink('../outside/secret.txt', path.join(ws.project, 'out-file'))
  await symlink('sub', path.join(ws.project, 'in'))
  await symlink('loop', path.join(ws.project, 'loop'))
  await symlink('../outside/nope', path.join(ws.project, 'dangling'))
  await symlink('../../outside/sub', path.join(ws.project, 'sub', 'up-out'))
  await mkdir(ws.root)
  backups = openStack(ws).backups
  realProject = await realpath(ws.project)
  outsideBefore = await snapshotTree(ws.outside)
  baseEntries = (await readdir(ws.base)).sort()
})
afterAll(async () => {
  console.log(
    `hostile input: ${cases} fuzz cases, sentinel unchanged after each; createBackup outcomes ${JSON.stringify(Object.fromEntries(outcomes))}`,
  )
  await ws.dispose()
})

const segment = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.constantFrom(
      '..',
      '.',
      '',
      'sub',
      'deep',
      'a',
      'file.js',
      'out',
      'abs-out',
      'out-file',
      'in',
      'loop',
      'dangling',
      'up-out',
      'secret.txt',
      'ünï',
      'файл.js',
      '日本',
      '文件.js',
      '~',
      LONG,
      TOO_LONG,
      'nul\0.js',
      'back\\slash.js',
      ' sp ',
      'C:',
      '%2e%2e',
    ),
  },
  { weight: 1, arbitrary: fc.string({ maxLength: 8 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: 6 }) },
)
/** Paths that name real files, inside and (through symlinks, `..` or absolute paths) outside. */
const KNOWN = [
  'file.js',
  'sub/file.js',
  'sub/deep/file.js',
  'a/file.js',
  'ünï/файл.js',
  '日本/文件.js',
  `sub/${LONG}`,
  '~/file.js',
  'back\\slash.js',
  'in/file.js',
  'in/deep/file.js',
  'sub\\deep\\file.js',
  './sub/../file.js',
  'out/file.js',
  'out/secret.txt',
  'abs-out/sub/file.js',
  'sub/up-out/file.js',
  'sub/up-out/deep/file.js',
  'out-file',
  'dangling',
  'loop/file.js',
  '../outside/file.js',
  'sub/../../outside/secret.txt',
  'ABS_PROJECT/file.js',
  'ABS_PROJECT/in/file.js',
  'ABS_OUTSIDE/file.js',
  'ABS_PROJECT/../outside/file.js',
]
const knownPath = fc
  .tuple(fc.constantFrom(...KNOWN), fc.constantFrom('', './', 'a/../', 'sub/../', './/'))
  .map(([known, decoration]) => (known.startsWith('ABS_') ? known : `${decoration}${known}`))
const randomPath = fc
  .tuple(
    fc.constantFrom(
      '',
      '',
      '',
      './',
      '/',
      '../',
      '../../',
      'C:\\',
      '\\\\server\\share\\',
      '~/',
      'ABS_OUTSIDE',
      'ABS_PROJECT',
    ),
    fc.array(segment, { minLength: 1, maxLength: 6 }),
    fc.constantFrom('/', '/', '\\', '//'),
  )
  .map(([prefix, parts, sep]) => {
    const start =
      prefix === 'ABS_OUTSIDE'
        ? `${ws.outside}/`
        : prefix === 'ABS_PROJECT'
          ? `${ws.project}/`
          : prefix
    return start + parts.join(sep)
  })
const filePath = fc
  .oneof({ weight: 3, arbitrary: knownPath }, { weight: 2, arbitrary: randomPath })
  .map((p) => p.replace(/^ABS_PROJECT/, ws.project).replace(/^ABS_OUTSIDE/, ws.outside))
const validUuid = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/)
const uuid = fc.oneof(
  { weight: 8, arbitrary: validUuid },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      '..',
      '.',
      '',
      '../x',
      'a/b',
      'a\\b',
      'x'.repeat(129),
      'x'.repeat(128),
      'a\0b',
      '-x',
      '.x',
      '_x',
      'ü',
      'a b',
      'a\nb',
      '/abs',
      'C:x',
    ),
  },
  { weight: 1, arbitrary: fc.string({ maxLength: 20 }) },
)

/** After every case: the sentinel is untouched, nothing appeared beside the project, the store holds only the store. */
async function assertContained(): Promise<void> {
  // A patch's lock is kept 5 ms for a next call, and a replaced manifest's second name is
  // unlinked on the thread pool: both are gone by then.
  await sleep(20)
  expect(await snapshotTree(ws.outside)).toEqual(outsideBefore)
  expect((await readdir(ws.base)).sort()).toEqual(baseEntries)
  for (const name of await readdir(ws.root).catch(() => [] as string[])) {
    expect(['_cacache', '_patches']).toContain(name)
  }
  for (const name of await readdir(ws.manifestsDir).catch(() => [] as string[])) {
    expect(name).toMatch(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}\.json$/)
  }
}

/** A backup that succeeded must have read a file inside the project, never one outside. */
async function assertReadInside(key: string, integrity: string): Promise<void> {
  expect(outsideIntegrities.has(integrity), `${key} was read from outside`).toBe(false)
  const real = await realpath(path.resolve(ws.project, key))
  expect(isInside(realProject, real), `${key} -> ${real}`).toBe(true)
}

describe('hostile uuids and paths', () => {
  it(`every call succeeds inside the project or throws a coded PatchBackupError (${RUNS} runs)`, async () => {
    await fc.assert(
      fc.asyncProperty(uuid, filePath, filePath, async (id, file, other) => {
        cases++
        const created = await settle(() => backups.createBackup(id, file))
        tally(created.ok ? 'backed up' : created.error.code)
        if (created.ok) {
          await assertReadInside(created.value.originalPath, created.value.integrity)
          const target = path.resolve(ws.project, created.value.originalPath)
          await writeFile(target, 'patched by the test')
          const restored = await settle(() => backups.restoreBackup(id, file))
          expect(restored).toEqual({ ok: true, value: true })
          expect(integrityOf(await readFile(target))).toBe(created.value.integrity)
          tally('restored')
        }
        const batch = await settle(() => backups.createBackups(id, [file, other]))
        if (batch.ok) {
          for (const info of Object.values(batch.value.files)) {
            await assertReadInside(info.originalPath, info.integrity)
          }
          for (const error of batch.value.errors) expect(error.code).toMatch(/^[A-Z_]+$/)
        }
        const lookups: (() => Promise<unknown>)[] = [
          () => backups.restoreAllBackups(id),
          () => backups.restoreBackup(id, other),
          () => backups.hasBackup(id, other),
          () => backups.getBackupInfo(id, file),
          () => backups.listBackups(id),
          () => backups.getPatchMetadata(id),
        ]
        for (const call of lookups) {
          const outcome = await settle(call)
          if (
            outcome.ok &&
            outcome.value &&
            typeof outcome.value === 'object' &&
            'errors' in outcome.value
          ) {
            for (const error of (outcome.value as RestoreAllResult).errors) {
              expect(error.code).toMatch(/^[A-Z_]+$/)
            }
          }
        }
        if (cases % 3 === 0) await settle(() => backups.cleanupBackups(id))
        await assertContained()
      }),
      { numRuns: RUNS },
    )
    // Cleaning up every patch the fuzzing made, then gc, leaves no stored bytes behind.
    for (const id of await backups.listAllPatches()) await backups.cleanupBackups(id)
    await backups.gc()
    expect(await snapshotTree(path.join(ws.cachePath, 'content-v2')).catch(() => [])).toEqual(
      expect.not.arrayContaining([expect.stringContaining('\tfile\t')]),
    )
  })
})

const MUTATIONS = [
  'none',
  'target missing',
  'parents missing',
  'parent is a symlink out',
  'grandparent is a symlink out',
  'parent is an absolute symlink out',
  'parent is a dangling symlink out',
  'parent is a symlink in',
  'target is a symlink out',
  'target is a dangling symlink out',
  'target is a symlink in',
  'target is a hardlink of a file outside',
  'target is a directory',
  'parent is a file',
] as const
type Mutation = (typeof MUTATIONS)[number]

/** What a restore must do after each change to the project. */
const EXPECTED: Record<
  Mutation,
  'restores' | 'INVALID_PATH' | 'TARGET_UNWRITABLE' | 'TARGET_NOT_A_FILE'
> = {
  none: 'restores',
  'target missing': 'restores',
  'parents missing': 'restores',
  'parent is a symlink out': 'INVALID_PATH',
  'grandparent is a symlink out': 'INVALID_PATH',
  'parent is an absolute symlink out': 'INVALID_PATH',
  'parent is a dangling symlink out': 'TARGET_UNWRITABLE',
  'parent is a symlink in': 'restores',
  'target is a symlink out': 'restores',
  'target is a dangling symlink out': 'restores',
  'target is a symlink in': 'restores',
  'target is a hardlink of a file outside': 'restores',
  'target is a directory': 'TARGET_NOT_A_FILE',
  'parent is a file': 'TARGET_UNWRITABLE',
}

describe('the project changing under a restore', () => {
  it(`a restore never follows a symlink out, and replaces a symlink or hardlink at the target (${RUNS} runs)`, async () => {
    let n = 0
    const baseline = outsideBefore
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...MUTATIONS),
        fc.uint8Array({ maxLength: 4096 }),
        fc.constantFrom(0o644, 0o600, 0o755, 0o444),
        fc.boolean(),
        async (mutation, content, mode, all) => {
          cases++
          const c = `case-${n++}`
          const key = `${c}/d1/d2/file.js`
          const target = path.join(ws.project, key)
          const mirror = path.join(ws.outside, c) // a sentinel tree of the same shape
          await mkdir(path.dirname(target), { recursive: true })
          await writeFile(target, content, { mode })
          const { chmod } = await import('node:fs/promises')
          await chmod(target, mode)
          const info = await backups.createBackup(c, key)
          await writeFile(target, 'patched')
          await mkdir(path.join(mirror, 'd2'), { recursive: true })
          await writeFile(path.join(mirror, 'd2', 'file.js'), `sentinel ${c}`)
          await writeFile(path.join(mirror, 'secret'), `secret ${c}`)
          await mkdir(path.join(ws.project, c, 'other'), { recursive: true })
          await writeFile(path.join(ws.project, c, 'victim.js'), 'inside victim')
          const before = await snapshotTree(ws.outside)
          outsideBefore = before
          const d1 = path.join(ws.project, c, 'd1')
          const d2 = path.join(d1, 'd2')
          const relOut = path.relative(d1, path.join(mirror, 'd2'))
          switch (mutation) {
            case 'none':
              break
            case 'target missing':
              await rm(target)
              break
            case 'parents missing':
              await rm(d1, { recursive: true })
              break
            case 'parent is a symlink out':
              await rm(d2, { recursive: true })
              await symlink(relOut, d2)
              break
            case 'grandparent is a symlink out':
              await rm(d1, { recursive: true })
              await symlink(path.relative(path.join(ws.project, c), mirror), d1)
              break
            case 'parent is an absolute symlink out':
              await rm(d2, { recursive: true })
              await symlink(path.join(mirror, 'd2'), d2)
              break
            case 'parent is a dangling symlink out':
              await rm(d2, { recursive: true })
              await symlink(path.join(mirror, 'missing'), d2)
              break
            case 'parent is a symlink in':
              await rm(d2, { recursive: true })
              await symlink('../other', d2)
              break
            case 'target is a symlink out':
              await rm(target)
              await symlink(path.join(mirror, 'secret'), target)
              break
            case 'target is a dangling symlink out':
              await rm(target)
              await symlink(path.join(mirror, 'created-by-restore'), target)
              break
            case 'target is a symlink in':
              await rm(target)
              await symlink('../../victim.js', target)
              break
            case 'target is a hardlink of a file outside':
              await rm(target)
              await link(path.join(mirror, 'secret'), target)
              break
            case 'target is a directory':
              await rm(target)
              await mkdir(target)
              break
            case 'parent is a file':
              await rm(d2, { recursive: true })
              await writeFile(d2, 'a file where a directory was')
              break
          }
          const outcome = await settle(async () => {
            if (!all) return backups.restoreBackup(c, key)
            const result = await backups.restoreAllBackups(c)
            if (result.errors[0]) {
              const { PatchBackupError } = await import('@patch-backup/core')
              throw new PatchBackupError(result.errors[0].code, result.errors[0].message)
            }
            return true
          })
          const expected = EXPECTED[mutation]
          if (expected === 'restores') {
            expect(outcome, mutation).toEqual({ ok: true, value: true })
            const stat = await lstat(target)
            expect(stat.isFile(), `${mutation}: a regular file is at the target`).toBe(true)
            expect(stat.mode & 0o7777).toBe(mode)
            expect(integrityOf(await readFile(target))).toBe(info.integrity)
          } else {
            expect(outcome.ok, mutation).toBe(false)
            if (!outcome.ok) {
              expect(outcome.error.code, mutation).toBe(expected)
              expect(outcome.error.message).toContain(key)
            }
          }
          expect(await snapshotTree(ws.outside), mutation).toEqual(before)
          if (mutation === 'target is a symlink in') {
            await expect(readFile(path.join(ws.project, c, 'victim.js'), 'utf8')).resolves.toBe(
              'inside victim',
            )
          }
          expect(await readdir(path.join(ws.project, c, 'other'))).toEqual(
            mutation === 'parent is a symlink in' && expected === 'restores' ? ['file.js'] : [],
          )
          await assertContained()
          await backups.cleanupBackups(c)
          // Back to the baseline, so every case starts from the same small tree.
          await rm(mirror, { recursive: true })
          await rm(path.join(ws.project, c), { recursive: true })
          outsideBefore = baseline
        },
      ),
      { numRuns: RUNS },
    )
  })
})

describe('hostile manifests', () => {
  it(`a manifest naming files outside the project restores nothing there (${RUNS} runs)`, async () => {
    await mkdir(path.join(ws.project, 'legit'), { recursive: true })
    await writeFile(path.join(ws.project, 'legit', 'file.js'), 'legit bytes')
    const real = await backups.createBackup('legit', 'legit/file.js')
    const { createJsonManifestRepository } = await import('@patch-backup/manifest')
    const manifestPath = (id: string) => path.join(ws.manifestsDir, `${id}.json`)
    const integrity = fc.oneof(
      { weight: 4, arbitrary: fc.constant(real.integrity) },
      {
        weight: 1,
        arbitrary: fc.constantFrom(
          'sha256-AAAA',
          'md5-abc',
          '',
          '../../../outside/secret.txt',
          `sha512-${'A'.repeat(86)}==`,
          'sha1-x',
        ),
      },
    )
    const mode = fc.oneof(
      fc.constantFrom(undefined, 0o644, 0o4755, 0o7777, 0, -1, 2 ** 40),
      fc.integer(),
    )
    let n = 0
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(filePath, integrity, mode, fc.nat({ max: 20 })), {
          minLength: 1,
          maxLength: 5,
        }),
        async (entries) => {
          cases++
          const id = `evil-${n++}`
          const files: Record<string, unknown> = {}
          for (const [key, sri, m, size] of entries) {
            files[key] = {
              integrity: sri,
              size: sri === real.integrity ? real.size : size,
              backedUpAt: 'x',
              originalPath: key,
              ...(m === undefined ? {} : { mode: m }),
            }
          }
          await mkdir(ws.manifestsDir, { recursive: true })
          await writeFile(manifestPath(id), JSON.stringify({ uuid: id, patchedAt: 'x', files }))
          const all = await settle(() => backups.restoreAllBackups(id))
          if (all.ok) {
            expect(all.value.restored.length + all.value.failed.length).toBe(
              Object.keys(files).length,
            )
            for (const error of all.value.errors) expect(error.code).toMatch(/^[A-Z_]+$/)
            for (const key of all.value.restored) {
              const written = await realpath(path.resolve(ws.project, key.replaceAll('\\', '/')))
              expect(isInside(realProject, written), key).toBe(true)
            }
          }
          for (const key of Object.keys(files)) await settle(() => backups.restoreBackup(id, key))
          await settle(() => backups.verify(id))
          await settle(() => backups.cleanupBackups(id))
          await rm(manifestPath(id), { force: true })
          await assertContained()
        },
      ),
      { numRuns: RUNS },
    )
    // The repository still reads the legit patch; gc after all this keeps it.
    await backups.gc()
    await expect(backups.verify('legit')).resolves.toMatchObject({ ok: 1, problems: [] })
    expect(createJsonManifestRepository).toBeTypeOf('function')
  })
})
