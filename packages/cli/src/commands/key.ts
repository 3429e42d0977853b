import { generateKey, keyId } from '@patch-backup/core'

export interface KeyOptions {
  action: 'generate'
}

export interface KeyResult {
  /** base64 of 32 random bytes: what PATCH_BACKUP_KEY and a key file hold. */
  key: string
  keyId: string
}

/** `key generate`: a fresh random key, as base64. */
export async function key(_options: KeyOptions): Promise<KeyResult> {
  const bytes = generateKey()
  return { key: Buffer.from(bytes).toString('base64'), keyId: keyId(bytes) }
}
