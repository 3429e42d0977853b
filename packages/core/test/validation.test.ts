import { describe, expect, it } from 'vitest'
import {
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
    })
  })

  it.each(['../x.js', 'a/../../x.js', '/etc/passwd', '/project-other/x.js'])(
    'refuses %s outside the root',
    (p) => {
      expect(codeOf(() => resolveProjectFile('/project', p))).toBe('INVALID_PATH')
    },
  )

  it('keeps absolute paths inside the root as given', () => {
    expect(resolveProjectFile('/project', '/project/x.js')).toEqual({
      key: '/project/x.js',
      absolute: '/project/x.js',
    })
  })
})
