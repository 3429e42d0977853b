import { randomBytes, scrypt } from 'node:crypto'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { PatchBackupError } from '../errors.js'
import { ENCRYPTION_KEY_BYTES } from '../layers/encryption.js'

/** The environment variable `keyFromEnv()` reads: the key as base64 of 32 bytes. */
export const KEY_ENV = 'PATCH_BACKUP_KEY'

/** scrypt cost for `keyFromPassphrase`: N = 2^17, r = 8, p = 1 (OWASP's minimum; 128 MiB, ~0.3 s). */
export const DEFAULT_SCRYPT = { N: 2 ** 17, r: 8, p: 1 } as const

export interface ScryptParams {
  N: number
  r: number
  p: number
}

function invalidKey(message: string, cause?: unknown): PatchBackupError {
  return new PatchBackupError('INVALID_KEY', message, { cause })
}

/** A fresh random 32-byte key. Keep it somewhere safe: without it the backups are unreadable. */
export function generateKey(): Uint8Array {
  return new Uint8Array(randomBytes(ENCRYPTION_KEY_BYTES))
}

/** A key written as base64 (or 64 hex digits) text, or 32 raw bytes. */
function decodeKey(bytes: Buffer, where: string): Uint8Array {
  if (bytes.length === ENCRYPTION_KEY_BYTES) return new Uint8Array(bytes)
  const text = bytes.toString('utf8').trim()
  const decoded = /^[0-9a-f]{64}$/i.test(text)
    ? Buffer.from(text, 'hex')
    : /^[A-Za-z0-9+/_-]+={0,2}$/.test(text)
      ? Buffer.from(text, text.includes('-') || text.includes('_') ? 'base64url' : 'base64')
      : undefined
  if (!decoded || decoded.length !== ENCRYPTION_KEY_BYTES) {
    throw invalidKey(
      `${where} does not hold a 32-byte key: write it as base64 (\`openssl rand -base64 32\`), 64 hex digits, or 32 raw bytes.`,
    )
  }
  return new Uint8Array(decoded)
}

/** The key in `PATCH_BACKUP_KEY` (base64 of 32 bytes). Throws `INVALID_KEY` when unset or malformed. */
export function keyFromEnv(env: NodeJS.ProcessEnv = process.env, name = KEY_ENV): Uint8Array {
  const value = env[name]
  if (value === undefined || value.trim() === '') {
    throw invalidKey(
      `No encryption key: set ${name} to the base64 of 32 random bytes (\`openssl rand -base64 32\`).`,
    )
  }
  return decodeKey(Buffer.from(value, 'utf8'), `The environment variable ${name}`)
}

/** The key in a file: base64 or hex text, or 32 raw bytes. */
export async function keyFromFile(file: string): Promise<Uint8Array> {
  let bytes: Buffer
  try {
    bytes = await readFile(file)
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? String(error)
    throw invalidKey(`Cannot read the key file ${file} (${code}).`, error)
  }
  return decodeKey(bytes, `The key file ${file}`)
}

export interface PassphraseOptions {
  /** At least 16 random bytes, kept with the backups (it is not secret, but without it the key is lost). */
  salt: Uint8Array
  /** scrypt cost; default `DEFAULT_SCRYPT`. Changing it changes the key. */
  scrypt?: ScryptParams
}

/** A 16-byte random salt for `keyFromPassphrase`. */
export function createSalt(): Uint8Array {
  return new Uint8Array(randomBytes(16))
}

/** Derives a 32-byte key from a passphrase with scrypt. Same passphrase + salt + cost, same key. */
export async function keyFromPassphrase(
  passphrase: string,
  options: PassphraseOptions,
): Promise<Uint8Array> {
  if (typeof passphrase !== 'string' || passphrase.length < 8) {
    throw invalidKey('A passphrase must be a string of at least 8 characters.')
  }
  const salt = options?.salt
  if (!(salt instanceof Uint8Array) || salt.length < 16) {
    throw invalidKey('keyFromPassphrase needs { salt }: at least 16 random bytes (createSalt()).')
  }
  const { N, r, p } = options.scrypt ?? DEFAULT_SCRYPT
  const key = await new Promise<Buffer>((resolve, reject) =>
    scrypt(
      passphrase.normalize('NFC'),
      salt,
      ENCRYPTION_KEY_BYTES,
      { N, r, p, maxmem: 128 * N * r * p + 32 * 1024 * 1024 },
      (error, derived) => (error ? reject(invalidKey(error.message, error)) : resolve(derived)),
    ),
  )
  return new Uint8Array(key)
}

/** What a salt file holds: the salt and the scrypt cost it goes with. */
export interface SaltFile {
  kdf: 'scrypt'
  salt: string
  N: number
  r: number
  p: number
}

/**
 * Reads the salt file of a passphrase-keyed store, or, with `create`, writes a new one if there is
 * none (`wx`: two processes creating it at once agree on the first). The file is not secret; losing
 * it loses the key, so keep it with the backups.
 */
export async function readSaltFile(
  file: string,
  options: { create?: boolean } = {},
): Promise<{ salt: Uint8Array; scrypt: ScryptParams }> {
  const parse = (text: string) => {
    let value: Partial<SaltFile>
    try {
      value = JSON.parse(text) as Partial<SaltFile>
    } catch (error) {
      throw invalidKey(`The salt file ${file} is not valid JSON.`, error)
    }
    const salt = typeof value.salt === 'string' ? Buffer.from(value.salt, 'base64') : undefined
    const params = [value.N, value.r, value.p]
    if (value.kdf !== 'scrypt' || !salt || salt.length < 16 || !params.every(Number.isInteger)) {
      throw invalidKey(
        `The salt file ${file} is damaged: expected {"kdf":"scrypt","salt":"<base64>","N":…,"r":…,"p":…}.`,
      )
    }
    return {
      salt: new Uint8Array(salt),
      scrypt: { N: value.N as number, r: value.r as number, p: value.p as number },
    }
  }
  try {
    return parse(await readFile(file, 'utf8'))
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
    if (!options.create) {
      throw invalidKey(
        `The salt file ${file} is missing. Without it the passphrase gives a different key; restore it from a copy.`,
        error,
      )
    }
  }
  const content: SaltFile = {
    kdf: 'scrypt',
    salt: Buffer.from(createSalt()).toString('base64'),
    ...DEFAULT_SCRYPT,
  }
  await mkdir(path.dirname(file), { recursive: true })
  try {
    await writeFile(file, `${JSON.stringify(content, null, 2)}\n`, { flag: 'wx', mode: 0o644 })
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
    return parse(await readFile(file, 'utf8')) // another process made it first
  }
  return parse(JSON.stringify(content))
}

/** Where a policy config says the key comes from (see `parsePolicyConfig`). */
export type KeySource =
  | { keySource: 'env'; env: string }
  | { keySource: 'file'; keyFile: string }
  | { keySource: 'passphrase'; passphraseEnv: string; saltFile: string }

/**
 * The key a config names. With a passphrase, `create` makes the salt file if it is missing
 * (pass it when about to write backups, not when only reading them).
 */
export async function loadKey(
  source: KeySource,
  options: { env?: NodeJS.ProcessEnv; create?: boolean } = {},
): Promise<Uint8Array> {
  const env = options.env ?? process.env
  if (source.keySource === 'env') return keyFromEnv(env, source.env)
  if (source.keySource === 'file') return keyFromFile(source.keyFile)
  const passphrase = env[source.passphraseEnv]
  if (!passphrase) {
    throw invalidKey(`No passphrase: set ${source.passphraseEnv} to the store's passphrase.`)
  }
  const { salt, scrypt: params } = await readSaltFile(source.saltFile, { create: options.create })
  return keyFromPassphrase(passphrase, { salt, scrypt: params })
}
