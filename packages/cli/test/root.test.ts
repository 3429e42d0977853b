import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { layout, resolveRoot } from '../src/root.js'

describe('resolveRoot', () => {
  it('prefers --dir, then PATCH_BACKUP_DIR, then ~/.socket', () => {
    const env = { HOME: '/home/me', PATCH_BACKUP_DIR: '/from/env' }
    expect(resolveRoot({ dir: '/explicit', env })).toBe('/explicit')
    expect(resolveRoot({ env })).toBe('/from/env')
    expect(resolveRoot({ env: { HOME: '/home/me' } })).toBe('/home/me/.socket')
  })

  it('resolves a relative --dir against the cwd and expands ~/', () => {
    expect(resolveRoot({ dir: 'store', env: {} })).toBe(path.resolve('store'))
    expect(resolveRoot({ dir: '~/backups', env: { HOME: '/home/me' } })).toBe('/home/me/backups')
  })

  it('throws NO_HOME instead of using a literal ~ when there is no home', () => {
    expect(() => resolveRoot({ env: { HOME: '' } })).toThrow(
      expect.objectContaining({ code: 'NO_HOME' }),
    )
    expect(() => resolveRoot({ env: { HOME: 'relative/home' } })).toThrow(
      expect.objectContaining({ code: 'NO_HOME' }),
    )
    expect(() => resolveRoot({ dir: '~', env: { HOME: '' } })).toThrow(
      expect.objectContaining({ code: 'NO_HOME' }),
    )
  })

  it('lays out the ~/.socket format', () => {
    expect(layout('/r')).toEqual({
      cache: '/r/_cacache',
      manifests: '/r/_patches/manifests',
      machine: '/r/_patches/machine',
    })
  })
})
