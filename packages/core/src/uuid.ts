import { PatchBackupError } from './errors.js'

const UUID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/

/** A uuid that passed `parseUuid`: safe to use as a file name and inside a store key. */
export type PatchUuid = string & { readonly __patchUuid: unique symbol }

export function isValidUuid(value: unknown): value is PatchUuid {
  return typeof value === 'string' && UUID_PATTERN.test(value) && value !== '.' && value !== '..'
}

export function parseUuid(value: unknown): PatchUuid {
  if (isValidUuid(value)) return value
  const shown = typeof value === 'string' ? JSON.stringify(value.slice(0, 60)) : String(value)
  throw new PatchBackupError(
    'INVALID_UUID',
    `Invalid patch uuid ${shown}: use 1-128 characters of letters, digits, '.', '_' or '-', starting with a letter or digit.`,
  )
}
