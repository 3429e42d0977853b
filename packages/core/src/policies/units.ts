import { PatchBackupError } from '../errors.js'

const DURATION_UNITS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 7 * 86_400_000,
}

const SIZE_UNITS: Record<string, number> = {
  b: 1,
  kb: 1000,
  mb: 1000 ** 2,
  gb: 1000 ** 3,
  tb: 1000 ** 4,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
  tib: 1024 ** 4,
}

function invalid(what: string, value: unknown, example: string, code: string): PatchBackupError {
  return new PatchBackupError(
    code,
    `${what} ${JSON.stringify(value)} is not valid: use a non-negative number or a string like ${example}.`,
  )
}

/**
 * `'30d'`, `'12h'`, `'15m'`, `'10s'`, `'500ms'`, `'2w'` or a number of milliseconds, to milliseconds.
 * The CLI's `--older-than` and the config file's durations go through here.
 */
export function parseDuration(value: string | number, what = 'Duration'): number {
  if (typeof value === 'number') {
    if (Number.isFinite(value) && value >= 0) return value
    throw invalid(what, value, "'30d' or '12h'", 'INVALID_OPTIONS')
  }
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$/i.exec(String(value))
  if (!match) throw invalid(what, value, "'30d', '12h', '15m' or '500ms'", 'INVALID_OPTIONS')
  return Math.round(Number(match[1]) * (DURATION_UNITS[(match[2] ?? '').toLowerCase()] ?? 1))
}

/**
 * `'1GB'`, `'512MiB'`, `'100kB'`, `'2048'` or a number, to bytes. Decimal units (kB, MB, GB) are
 * powers of 1000, binary ones (KiB, MiB, GiB) powers of 1024.
 */
export function parseByteSize(value: string | number, what = 'Size'): number {
  if (typeof value === 'number') {
    if (Number.isFinite(value) && value >= 0) return Math.floor(value)
    throw invalid(what, value, "'1GB' or '512MiB'", 'INVALID_OPTIONS')
  }
  const match = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]i?b|b)?\s*$/i.exec(String(value))
  if (!match) throw invalid(what, value, "'1GB', '512MiB' or '100kB'", 'INVALID_OPTIONS')
  const unit = (match[2] ?? 'b').toLowerCase()
  return Math.floor(Number(match[1]) * (SIZE_UNITS[unit] ?? 1))
}

/** `1536` -> `'1.5 KiB'`: for messages. */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let value = bytes
  let unit = 0
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024
    unit++
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(1)} ${units[unit]}`
}
