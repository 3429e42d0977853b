// Config: the policy file, key loading (env, key file, scrypt passphrase), what they turn into.
// The only code in core that reads the environment or key files; it opens no store or manifest.

import os from 'node:os'
import path from 'node:path'
import { PatchBackupError } from '../errors.js'
import type { CompressionAlgorithm } from '../layers/compression.js'
import type { StorageLimits } from '../policies/limits.js'
import { parseByteSize, parseDuration } from '../policies/units.js'
import { KEY_ENV, type KeySource } from './key-source.js'

/** The policy file in a backup root: `<root>/patch-backup.config.json`. */
export const POLICY_CONFIG_FILE = 'patch-backup.config.json'
/** Where a passphrase-keyed root keeps its salt by default: `<root>/patch-backup.salt`. */
export const DEFAULT_SALT_FILE = 'patch-backup.salt'
export const PASSPHRASE_ENV = 'PATCH_BACKUP_PASSPHRASE'

export interface RetentionConfig {
  olderThan?: number
  maxTotalBytes?: number
  maxPatchBytes?: number
  keepLast?: number
  intervalMs?: number
}

export type EncryptionConfig = KeySource & { allowPlaintext?: boolean }

/** A policy file, validated, with durations in milliseconds, sizes in bytes and paths absolute. */
export interface PolicyConfig {
  retention?: RetentionConfig
  limits?: StorageLimits
  compression?: { algorithm: CompressionAlgorithm; level?: number }
  encryption?: EncryptionConfig
}

export interface ParsePolicyConfigOptions {
  /** Named in error messages; default `patch-backup.config.json`. */
  source?: string
  /** Relative `keyFile` / `saltFile` resolve against it; default the current directory. */
  baseDir?: string
}

type Json = Record<string, unknown>

/**
 * Validates a parsed `patch-backup.config.json` and normalizes it. Anything unknown or malformed
 * throws `INVALID_CONFIG` naming the file and the field:
 *
 * ```json
 * {
 *   "retention": { "olderThan": "30d", "maxTotalBytes": "2GB", "keepLast": 3, "interval": "1d" },
 *   "limits": { "maxPatchBytes": "200MB", "maxTotalBytes": "2GB", "onExceeded": "prune-oldest" },
 *   "compression": { "algorithm": "brotli", "level": 5 },
 *   "encryption": { "keySource": "env" }
 * }
 * ```
 */
export function parsePolicyConfig(
  value: unknown,
  options: ParsePolicyConfigOptions = {},
): PolicyConfig {
  const source = options.source ?? POLICY_CONFIG_FILE
  const baseDir = options.baseDir ?? process.cwd()
  const fail = (field: string, message: string) =>
    new PatchBackupError('INVALID_CONFIG', `${source}: ${field}: ${message}`, { path: source })

  const object = (field: string, v: unknown, keys: readonly string[]): Json => {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) {
      throw fail(field, `expected an object, got ${JSON.stringify(v)}.`)
    }
    for (const key of Object.keys(v)) {
      if (!keys.includes(key)) {
        throw fail(`${field}.${key}`, `unknown setting; expected one of ${keys.join(', ')}.`)
      }
    }
    return v as Json
  }
  const convert = <T>(field: string, fn: () => T, expected: string): T => {
    try {
      return fn()
    } catch {
      throw fail(field, `expected ${expected}.`)
    }
  }
  const duration = (field: string, v: unknown) =>
    convert(
      field,
      () => parseDuration(v as string | number),
      `a duration like "30d", "12h" or a number of milliseconds, got ${JSON.stringify(v)}`,
    )
  const size = (field: string, v: unknown) =>
    convert(
      field,
      () => parseByteSize(v as string | number),
      `a size like "1GB", "512MiB" or a number of bytes, got ${JSON.stringify(v)}`,
    )
  const string = (field: string, v: unknown) => {
    if (typeof v !== 'string' || v.trim() === '')
      throw fail(field, `expected a non-empty string, got ${JSON.stringify(v)}.`)
    return v
  }
  const filePath = (field: string, v: unknown) => {
    const p = string(field, v)
    const expanded = p === '~' || p.startsWith('~/') ? path.join(os.homedir(), p.slice(1)) : p
    return path.resolve(baseDir, expanded)
  }

  const root = object('(top level)', value, [
    '$schema',
    'retention',
    'limits',
    'compression',
    'encryption',
  ])
  const config: PolicyConfig = {}

  if (root.retention !== undefined) {
    const r = object('retention', root.retention, [
      'olderThan',
      'maxTotalBytes',
      'maxPatchBytes',
      'keepLast',
      'interval',
    ])
    const retention: RetentionConfig = {}
    if (r.olderThan !== undefined)
      retention.olderThan = duration('retention.olderThan', r.olderThan)
    if (r.maxTotalBytes !== undefined)
      retention.maxTotalBytes = size('retention.maxTotalBytes', r.maxTotalBytes)
    if (r.maxPatchBytes !== undefined)
      retention.maxPatchBytes = size('retention.maxPatchBytes', r.maxPatchBytes)
    if (r.keepLast !== undefined) {
      if (!Number.isInteger(r.keepLast) || (r.keepLast as number) < 0) {
        throw fail(
          'retention.keepLast',
          `expected a non-negative integer, got ${JSON.stringify(r.keepLast)}.`,
        )
      }
      retention.keepLast = r.keepLast as number
    }
    if (r.interval !== undefined) retention.intervalMs = duration('retention.interval', r.interval)
    const rules = [
      retention.olderThan,
      retention.maxTotalBytes,
      retention.maxPatchBytes,
      retention.keepLast,
    ]
    if (rules.every((rule) => rule === undefined)) {
      throw fail(
        'retention',
        'needs at least one of olderThan, maxTotalBytes, maxPatchBytes or keepLast.',
      )
    }
    config.retention = retention
  }

  if (root.limits !== undefined) {
    const l = object('limits', root.limits, ['maxPatchBytes', 'maxTotalBytes', 'onExceeded'])
    const limits: StorageLimits = {}
    if (l.maxPatchBytes !== undefined)
      limits.maxPatchBytes = size('limits.maxPatchBytes', l.maxPatchBytes)
    if (l.maxTotalBytes !== undefined)
      limits.maxTotalBytes = size('limits.maxTotalBytes', l.maxTotalBytes)
    if (l.onExceeded !== undefined) {
      if (l.onExceeded !== 'refuse' && l.onExceeded !== 'prune-oldest') {
        throw fail(
          'limits.onExceeded',
          `expected "refuse" or "prune-oldest", got ${JSON.stringify(l.onExceeded)}.`,
        )
      }
      limits.onExceeded = l.onExceeded
    }
    config.limits = limits
  }

  const algorithms = ['gzip', 'brotli', 'zstd', 'none']
  if (root.compression !== undefined && root.compression !== false) {
    const c =
      typeof root.compression === 'string'
        ? { algorithm: root.compression }
        : object('compression', root.compression, ['algorithm', 'level'])
    if (!algorithms.includes(c.algorithm as string)) {
      throw fail(
        'compression.algorithm',
        `expected one of ${algorithms.map((a) => `"${a}"`).join(', ')}, got ${JSON.stringify(c.algorithm)}.`,
      )
    }
    const compression: NonNullable<PolicyConfig['compression']> = {
      algorithm: c.algorithm as CompressionAlgorithm,
    }
    if (c.level !== undefined) {
      if (!Number.isInteger(c.level))
        throw fail('compression.level', `expected an integer, got ${JSON.stringify(c.level)}.`)
      compression.level = c.level as number
    }
    config.compression = compression
  }

  if (root.encryption !== undefined && root.encryption !== false) {
    const e = object('encryption', root.encryption, [
      'keySource',
      'env',
      'keyFile',
      'passphraseEnv',
      'saltFile',
      'allowPlaintext',
    ])
    const allow = e.allowPlaintext
    if (allow !== undefined && typeof allow !== 'boolean') {
      throw fail(
        'encryption.allowPlaintext',
        `expected true or false, got ${JSON.stringify(allow)}.`,
      )
    }
    const extra = allow === undefined ? {} : { allowPlaintext: allow }
    const only = (keySource: string, allowed: string[]) => {
      for (const key of ['env', 'keyFile', 'passphraseEnv', 'saltFile']) {
        if (e[key] !== undefined && !allowed.includes(key)) {
          throw fail(`encryption.${key}`, `does not apply to keySource "${keySource}".`)
        }
      }
    }
    if (e.keySource === 'env') {
      only('env', ['env'])
      config.encryption = {
        keySource: 'env',
        env: e.env === undefined ? KEY_ENV : string('encryption.env', e.env),
        ...extra,
      }
    } else if (e.keySource === 'file') {
      only('file', ['keyFile'])
      if (e.keyFile === undefined)
        throw fail('encryption.keyFile', 'is required with keySource "file".')
      config.encryption = {
        keySource: 'file',
        keyFile: filePath('encryption.keyFile', e.keyFile),
        ...extra,
      }
    } else if (e.keySource === 'passphrase') {
      only('passphrase', ['passphraseEnv', 'saltFile'])
      config.encryption = {
        keySource: 'passphrase',
        passphraseEnv:
          e.passphraseEnv === undefined
            ? PASSPHRASE_ENV
            : string('encryption.passphraseEnv', e.passphraseEnv),
        saltFile: filePath('encryption.saltFile', e.saltFile ?? DEFAULT_SALT_FILE),
        ...extra,
      }
    } else {
      throw fail(
        'encryption.keySource',
        `expected "env", "file" or "passphrase", got ${JSON.stringify(e.keySource)}.`,
      )
    }
  }
  return config
}
