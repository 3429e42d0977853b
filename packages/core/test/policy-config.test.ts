import path from 'node:path'
import { describe, expect, it } from 'vitest'
import {
  isPatchBackupError,
  parseByteSize,
  parseDuration,
  parsePolicyConfig,
  storagePoliciesFromConfig,
} from '../src/index.js'

function configError(value: unknown): string {
  try {
    parsePolicyConfig(value, { source: 'cfg.json', baseDir: '/root' })
  } catch (error) {
    if (isPatchBackupError(error, 'INVALID_CONFIG')) return error.message
    throw error
  }
  throw new Error('expected INVALID_CONFIG')
}

describe('units', () => {
  it.each([
    ['30d', 30 * 86_400_000],
    ['12h', 12 * 3_600_000],
    ['15m', 900_000],
    ['10s', 10_000],
    ['500ms', 500],
    ['2w', 14 * 86_400_000],
    [1234, 1234],
  ])('duration %j', (input, ms) => expect(parseDuration(input)).toBe(ms))

  it.each([
    ['1GB', 1e9],
    ['512MiB', 512 * 1024 ** 2],
    ['100kB', 100_000],
    ['2048', 2048],
    ['1.5KiB', 1536],
    [42, 42],
  ])('size %j', (input, bytes) => expect(parseByteSize(input)).toBe(bytes))

  it.each(['30 days', '-1d', 'd', ''])('refuses duration %j', (input) => {
    expect(() => parseDuration(input)).toThrow(expect.objectContaining({ code: 'INVALID_OPTIONS' }))
  })
})

describe('parsePolicyConfig', () => {
  it('normalizes durations, sizes and paths', () => {
    const config = parsePolicyConfig(
      {
        $schema: 'x',
        retention: { olderThan: '30d', maxTotalBytes: '2GB', keepLast: 3, interval: '12h' },
        limits: { maxPatchBytes: '200MB', maxTotalBytes: 5e9, onExceeded: 'prune-oldest' },
        compression: 'brotli',
        encryption: { keySource: 'passphrase' },
      },
      { baseDir: '/backups' },
    )
    expect(config).toEqual({
      retention: {
        olderThan: 30 * 86_400_000,
        maxTotalBytes: 1e9 * 2,
        keepLast: 3,
        intervalMs: 12 * 3_600_000,
      },
      limits: { maxPatchBytes: 200e6, maxTotalBytes: 5e9, onExceeded: 'prune-oldest' },
      compression: { algorithm: 'brotli' },
      encryption: {
        keySource: 'passphrase',
        passphraseEnv: 'PATCH_BACKUP_PASSPHRASE',
        saltFile: path.resolve('/backups/patch-backup.salt'),
      },
    })
    expect(
      parsePolicyConfig({ encryption: { keySource: 'file', keyFile: 'k' } }, { baseDir: '/b' })
        .encryption,
    ).toEqual({
      keySource: 'file',
      keyFile: path.resolve('/b/k'),
    })
    expect(parsePolicyConfig({ encryption: { keySource: 'env' }, compression: false })).toEqual({
      encryption: { keySource: 'env', env: 'PATCH_BACKUP_KEY' },
    })
  })

  it.each([
    [[], '(top level)'],
    [{ retention: { olderThan: '30 days' } }, 'retention.olderThan'],
    [{ retention: { olderTan: '30d' } }, 'retention.olderTan: unknown setting'],
    [{ retention: {} }, 'retention: needs at least one'],
    [{ retention: { keepLast: -1 } }, 'retention.keepLast'],
    [{ limits: { maxTotalBytes: '1 gigabyte' } }, 'limits.maxTotalBytes'],
    [{ limits: { onExceeded: 'panic' } }, 'limits.onExceeded'],
    [{ compression: 'lz4' }, 'compression.algorithm'],
    [{ compression: { algorithm: 'gzip', level: 'max' } }, 'compression.level'],
    [{ encryption: { keySource: 'kms' } }, 'encryption.keySource'],
    [{ encryption: { keySource: 'file' } }, 'encryption.keyFile: is required'],
    [{ encryption: { keySource: 'env', keyFile: 'x' } }, 'encryption.keyFile: does not apply'],
    [{ colour: 'blue' }, 'colour: unknown setting'],
  ])('%j fails with INVALID_CONFIG naming %s', (value, field) => {
    const message = configError(value)
    expect(message).toContain('cfg.json: ')
    expect(message).toContain(field)
  })
})

describe('storagePoliciesFromConfig', () => {
  it('loads the key and hands back the decorator, limits and retention', async () => {
    const key = Buffer.alloc(32, 5).toString('base64')
    const policies = await storagePoliciesFromConfig(
      parsePolicyConfig({
        retention: { olderThan: '7d', interval: '1h' },
        limits: { maxTotalBytes: '1GB' },
        compression: 'gzip',
        encryption: { keySource: 'env', env: 'MY_KEY' },
      }),
      { env: { MY_KEY: key } },
    )
    expect(policies.limits).toEqual({ maxTotalBytes: 1e9 })
    expect(policies.retention).toEqual({ olderThan: 7 * 86_400_000, intervalMs: 3_600_000 })
    expect(typeof policies.decorateStore).toBe('function')
    await expect(
      storagePoliciesFromConfig(parsePolicyConfig({ encryption: { keySource: 'env' } }), {
        env: {},
      }),
    ).rejects.toMatchObject({ code: 'INVALID_KEY' })
  })
})
