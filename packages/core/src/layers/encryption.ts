import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes } from 'node:crypto'
import { PatchBackupError } from '../errors.js'
import type { BackupStore } from '../types.js'
import { withCompression } from './compression.js'
import {
  assertWrappable,
  ByteQueue,
  chain,
  createLayeredStore,
  type Decoder,
  type Encoder,
  type LayeredStore,
  layerOf,
  readHead,
} from './layer.js'

export interface EncryptionOptions {
  /** 32 bytes: `keyFromEnv()`, `keyFromFile(path)`, `keyFromPassphrase(…)` or `generateKey()`. */
  key: Uint8Array
  /**
   * Also read bytes that were stored before encryption was turned on (kept in clear under the
   * original integrity). Off by default: with it on, whoever can write to the store and the
   * manifests can make a restore write bytes of their choosing, which encryption otherwise prevents.
   */
  allowPlaintext?: boolean
}

/**
 * Stored format, version 1. A 56-byte header, then frames:
 *
 *   0..3   'PBE' 0x01          magic and version
 *   4      log2(frame size)    16: 64 KiB of plaintext per frame
 *   5..7   0
 *   8..15  key id              first 8 bytes of HMAC-SHA256(key, 'patch-backup/key-id/v1')
 *   16..47 salt                random per blob; the blob key is HKDF-SHA256(key, salt)
 *   48..54 nonce prefix        random per blob
 *   55     0
 *
 * Frame i is AES-256-GCM under the blob key with nonce = prefix || u32be(i) || final and
 * AAD = header || u32be(i) || final, where final is 1 on the last frame only: its ciphertext and
 * its 16-byte tag. Every frame but the last holds exactly one frame size of plaintext; the last
 * holds 0 to frame size. Reordered, dropped, cut or moved frames fail to authenticate.
 */
const MAGIC = Buffer.from('PBE\x01', 'latin1')
const HEADER_SIZE = 56
const FRAME_SHIFT = 16
const TAG_SIZE = 16
const KEY_SIZE = 32
const HKDF_INFO = 'patch-backup/aes-256-gcm/v1'
const MAX_FRAMES = 2 ** 32 - 1

export const ENCRYPTION_KEY_BYTES = KEY_SIZE

/** A short public fingerprint of a key, as written in each encrypted blob's header (hex). */
export function keyId(key: Uint8Array): string {
  return keyIdBytes(checkedKey(key)).toString('hex')
}

function keyIdBytes(key: Buffer): Buffer {
  return createHmac('sha256', key).update('patch-backup/key-id/v1').digest().subarray(0, 8)
}

function checkedKey(key: Uint8Array): Buffer {
  if (!(key instanceof Uint8Array) || key.length !== KEY_SIZE) {
    const got = key instanceof Uint8Array ? `${key.length} bytes` : typeof key
    throw new PatchBackupError(
      'INVALID_KEY',
      `An encryption key is exactly ${KEY_SIZE} bytes, got ${got}. Make one with generateKey() (or \`openssl rand -base64 32\`) or derive one with keyFromPassphrase().`,
    )
  }
  return Buffer.from(key)
}

function blobKey(key: Buffer, salt: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', key, salt, HKDF_INFO, KEY_SIZE))
}

function frameTail(index: number, final: boolean): Buffer {
  const tail = Buffer.alloc(5)
  tail.writeUInt32BE(index, 0)
  tail[4] = final ? 1 : 0
  return tail
}

interface BlobContext {
  key: Buffer
  header: Buffer
  prefix: Buffer
}

function seal(blob: BlobContext, index: number, final: boolean, plain: Buffer): Buffer {
  if (index > MAX_FRAMES) {
    throw new PatchBackupError('STORE_ERROR', 'A file is too large to encrypt (over 256 TiB).')
  }
  const tail = frameTail(index, final)
  const cipher = createCipheriv('aes-256-gcm', blob.key, Buffer.concat([blob.prefix, tail]), {
    authTagLength: TAG_SIZE,
  })
  cipher.setAAD(Buffer.concat([blob.header, tail]))
  const body = cipher.update(plain)
  const rest = cipher.final()
  return Buffer.concat([body, rest, cipher.getAuthTag()])
}

function decryptFailed(message: string, cause?: unknown): PatchBackupError {
  return new PatchBackupError('DECRYPT_FAILED', message, { cause })
}

/**
 * The stored bytes were changed: reported as INTEGRITY_MISMATCH (what the service, `verify` and
 * `repair` act on) with the decryption failure as its cause.
 */
function tampered(storeKey: string, detail: string): PatchBackupError {
  const cause = decryptFailed(`Decryption of ${storeKey} failed: ${detail}.`)
  return new PatchBackupError(
    'INTEGRITY_MISMATCH',
    `The encrypted bytes of ${storeKey} do not authenticate (${detail}): they were damaged or tampered with. Nothing was written; run 'patch-backup verify' to find every damaged file.`,
    { cause },
  )
}

function open(blob: BlobContext, index: number, final: boolean, frame: Buffer, storeKey: string) {
  const tail = frameTail(index, final)
  const decipher = createDecipheriv('aes-256-gcm', blob.key, Buffer.concat([blob.prefix, tail]), {
    authTagLength: TAG_SIZE,
  })
  decipher.setAAD(Buffer.concat([blob.header, tail]))
  decipher.setAuthTag(frame.subarray(frame.length - TAG_SIZE))
  try {
    const body = decipher.update(frame.subarray(0, frame.length - TAG_SIZE))
    decipher.final()
    return body
  } catch {
    throw tampered(storeKey, final ? `frame ${index} (the last)` : `frame ${index}`)
  }
}

function encryptor(key: Buffer, id: Buffer): Encoder {
  return async function* encrypt(plain) {
    const header = Buffer.alloc(HEADER_SIZE)
    MAGIC.copy(header, 0)
    header[4] = FRAME_SHIFT
    id.copy(header, 8)
    const salt = randomBytes(32)
    salt.copy(header, 16)
    const prefix = randomBytes(7)
    prefix.copy(header, 48)
    const blob: BlobContext = { key: blobKey(key, salt), header, prefix }
    const frameSize = 2 ** FRAME_SHIFT
    yield header
    const pending = new ByteQueue()
    let index = 0
    for await (const chunk of plain) {
      pending.push(chunk)
      // Hold one frame back: only the end of the input says which frame is the last.
      while (pending.length > frameSize) yield seal(blob, index++, false, pending.take(frameSize))
    }
    yield seal(blob, index, true, pending.takeAll())
  }
}

/** After a header problem: if the store itself finds its bytes damaged, that is the better answer. */
async function storeDamage(input: AsyncIterator<Buffer>): Promise<unknown> {
  try {
    for (;;) if ((await input.next()).done) return undefined
  } catch (error) {
    if (error instanceof PatchBackupError && error.code === 'INTEGRITY_MISMATCH') return error
    return undefined
  }
}

const isEncrypted = (head: Buffer) =>
  head.length >= MAGIC.length && head.subarray(0, MAGIC.length).equals(MAGIC)

function headerProblem(head: Buffer, id: Buffer, storeKey: string): PatchBackupError | undefined {
  if (!isEncrypted(head)) {
    return decryptFailed(
      `The backup stored under ${storeKey} is not encrypted: it was stored before encryption was turned on, or by something else. Nothing was written. To read backups made before encryption, pass allowPlaintext: true.`,
    )
  }
  if (head.length < HEADER_SIZE) return tampered(storeKey, 'the header is cut short')
  const shift = head[4] as number
  if (shift < 10 || shift > 24 || head[5] !== 0 || head[6] !== 0 || head[7] !== 0) {
    return decryptFailed(
      `The backup stored under ${storeKey} was encrypted in a format this version of @patch-backup/core does not know. Upgrade @patch-backup/core to read it.`,
    )
  }
  const stored = head.subarray(8, 16)
  if (!stored.equals(id)) {
    return decryptFailed(
      `Cannot decrypt the backup stored under ${storeKey}: it was encrypted with another key (key id ${stored.toString('hex')}; this key's id is ${id.toString('hex')}). Nothing was written. Use the key the backups were made with.`,
    )
  }
  return undefined
}

function decryptor(key: Buffer, id: Buffer, allowPlaintext: boolean): Decoder {
  return async function* decrypt(stored, storeKey) {
    const input = stored[Symbol.asyncIterator]()
    try {
      const [head] = await readHead(input, HEADER_SIZE)
      if (allowPlaintext && !isEncrypted(head)) {
        // Stored before encryption was on: passed as is, and checked against the original's integrity above.
        yield* chain(head, input)
        return
      }
      const problem = headerProblem(head, id, storeKey)
      if (problem) {
        if (problem.code === 'INTEGRITY_MISMATCH') throw problem
        throw (await storeDamage(input)) ?? problem
      }
      const header = head.subarray(0, HEADER_SIZE)
      const blob: BlobContext = {
        key: blobKey(key, header.subarray(16, 48)),
        header,
        prefix: header.subarray(48, 55),
      }
      const frameBytes = 2 ** (header[4] as number) + TAG_SIZE
      const pending = new ByteQueue()
      pending.push(head.subarray(HEADER_SIZE))
      let index = 0
      for (;;) {
        // Hold one frame back (only the end says which is last), including frames that came with the header.
        while (pending.length > frameBytes) {
          yield open(blob, index++, false, pending.take(frameBytes), storeKey)
        }
        const next = await input.next()
        if (next.done) break
        pending.push(next.value)
      }
      if (pending.length < TAG_SIZE) throw tampered(storeKey, 'the last frame is missing')
      yield open(blob, index, true, pending.takeAll(), storeKey)
    } finally {
      await input.return?.()
    }
  }
}

/**
 * A store that encrypts what it is given (AES-256-GCM, streamed in authenticated 64 KiB frames
 * under a per-blob key) before the wrapped store keeps it. `put` answers with the integrity and
 * size of the original bytes plus `storedSize`; `open` decrypts, authenticates every frame, and
 * checks the original integrity while streaming.
 *
 * - A wrong key fails with `DECRYPT_FAILED`; changed, cut or reordered bytes fail with
 *   `INTEGRITY_MISMATCH` whose `cause` is a `DECRYPT_FAILED` error. Either way the stream errors,
 *   so a restore leaves its target untouched.
 * - Each blob gets a random salt and nonce, so identical files encrypt differently and the wrapped
 *   store no longer shares their bytes.
 * - Compression must come first: `withEncryption(withCompression(store))` is rebuilt as
 *   `withCompression(withEncryption(store))`, so both spellings compress, then encrypt.
 */
export function withEncryption(store: BackupStore, options: EncryptionOptions): LayeredStore {
  const key = checkedKey(options?.key as Uint8Array)
  const below = store && layerOf(store)
  if (below?.kind === 'compression') {
    // Ciphertext does not compress: move the compression above the encryption.
    return withCompression(withEncryption(below.inner, options), below.options as object)
  }
  assertWrappable(store, 'withEncryption')
  const id = keyIdBytes(key)
  return createLayeredStore({
    kind: 'encryption',
    inner: store,
    options: { allowPlaintext: !!options.allowPlaintext },
    encode: encryptor(key, id),
    decode: decryptor(key, id, !!options.allowPlaintext),
    readsUndecoded: !!options.allowPlaintext,
  })
}
