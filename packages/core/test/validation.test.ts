import { describe, expect, it } from 'vitest'
import {
  createFilePaths,
  isPatchBackupError,
  normalizeFileKey,
  parseUuid,
  resolveProjectFile,
} from '../src/index.js'

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn()
    return undefined
  } catch (error) {
    return isPatchBackupError(error) ? error.code : 'NOT_OURS'
  }
}

describe('parseUuid', () => {
  it.each(['abc-123', 'A', 'patch_1.2-x', 'x'.repeat(128)])('accepts %s', (uuid) => {
    expect(parseUuid(uuid)).toBe(uuid)
  })

  it.each([
    '',
    '../x',
    'a/b',
    'a\\b',
    '.',
    '..',
    '.hidden',
    '-x',
    'x'.repeat(129),
    'a\0b',
    'a b',
    'é',
  ])('refuses %j with INVALID_UUID', (uuid) => {
    expect(codeOf(() => parseUuid(uuid))).toBe('INVALID_UUID')
  })

  it('refuses non-strings', () => {
    expect(codeOf(() => parseUuid(42))).toBe('INVALID_UUID')
    expect(codeOf(() => parseUuid(undefined))).toBe('INVALID_UUID')
  })
})

describe('normalizeFileKey', () => {
  it.each([
    ['./a/../b.js', 'b.js'],
    ['node_modules\\lodash\\index.js', 'node_modules/lodash/index.js'],
    ['a//b.js', 'a/b.js'],
    ['/abs/x.js', '/abs/x.js'],
  ])('%s -> %s', (input, key) => {
    expect(normalizeFileKey(input)).toBe(key)
  })

  it.each(['', '.', './', 'a/', '/', 'a\0b'])('refuses %j with INVALID_PATH', (input) => {
    expect(codeOf(() => normalizeFileKey(input))).toBe('INVALID_PATH')
  })
})

describe('resolveProjectFile', () => {
  it('resolves relative paths against the root', () => {
    expect(resolveProjectFile('/project', 'a/b.js')).toEqual({
      key: 'a/b.js',
      absolute: '/project/a/b.js',
      confined: true,
    })
  })

  it.each(['../x.js', 'a/../../x.js', '/etc/passwd', '/project-other/x.js'])(
    'refuses %s outside the root',
    (p) => {
      expect(codeOf(() => resolveProjectFile('/project', p))).toBe('INVALID_PATH')
    },
  )

  it('keys an absolute path inside the root by its project-relative path: one file, one key', () => {
    expect(resolveProjectFile('/project', '/project/x.js')).toEqual({
      key: 'x.js',
      absolute: '/project/x.js',
      confined: true,
    })
    expect(resolveProjectFile('/project', '../project/x.js').key).toBe('x.js')
  })
})

describe('createFilePaths', () => {
  it('without a project root, takes an absolute path anywhere as given, normalized', () => {
    const paths = createFilePaths({ cwd: '/somewhere' })
    expect(paths.projectRoot).toBeUndefined()
    expect(paths.resolve('/tmp/x/./a/../b.js')).toEqual({
      key: '/tmp/x/b.js',
      absolute: '/tmp/x/b.js',
      confined: false,
    })
    expect(paths.resolve('./a/../b.js')).toEqual({
      key: 'b.js',
      absolute: '/somewhere/b.js',
      confined: false,
    })
    expect(paths.resolve('a\\b.js').key).toBe('a/b.js')
    expect(paths.resolve('../up.js').absolute).toBe('/up.js')
  })

  it('without cwd, resolves relative paths against process.cwd() at each call', () => {
    const paths = createFilePaths()
    const saved = process.cwd()
    try {
      process.chdir('/')
      expect(paths.resolve('a.js').absolute).toBe('/a.js')
    } finally {
      process.chdir(saved)
    }
    expect(paths.resolve('a.js').absolute).toBe(`${saved}/a.js`)
  })

  it("with outsideProject: 'allow', takes absolute paths outside the root unconfined, never a relative climb", () => {
    const paths = createFilePaths({ projectRoot: '/project', outsideProject: 'allow' })
    expect(paths.resolve('/etc/x.js')).toEqual({
      key: '/etc/x.js',
      absolute: '/etc/x.js',
      confined: false,
    })
    expect(paths.resolve('/project/a.js')).toMatchObject({ key: 'a.js', confined: true })
    expect(codeOf(() => paths.resolve('../x.js'))).toBe('INVALID_PATH')
  })

  it('fromKey keeps a recorded key exactly as recorded', () => {
    const paths = createFilePaths({ projectRoot: '/project' })
    expect(paths.fromKey('/project/a.js')).toEqual({
      key: '/project/a.js',
      absolute: '/project/a.js',
      confined: true,
    })
    expect(codeOf(() => paths.fromKey('/etc/passwd'))).toBe('INVALID_PATH')
  })

  it('names the option and the CLI flag that allow a path outside the root', () => {
    try {
      createFilePaths({ projectRoot: '/project' }).resolve('/etc/passwd')
      expect.unreachable()
    } catch (error) {
      expect((error as Error).message).toContain('--allow-outside')
    }
  })
})
