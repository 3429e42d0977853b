/** Every code a PatchBackupError can carry; callers switch on these. */
export type PatchBackupErrorCode =
  | 'INVALID_UUID'
  | 'INVALID_PATH'
  | 'INVALID_OPTIONS'
  | 'SOURCE_UNREADABLE'
  | 'TARGET_UNWRITABLE'
  | 'INTEGRITY_MISMATCH'
  | 'BLOB_MISSING'
  | 'MANIFEST_CORRUPT'
  | 'MANIFEST_UNWRITABLE'
  | 'MANIFEST_UNREADABLE'
  | 'INVALID_MANIFEST'
  | 'LOCK_TIMEOUT'
  | 'LOCK_COMPROMISED'
  | 'PATCH_BUSY'
  | 'STORE_ERROR'
  | 'DRIFTED'
  | 'RESTORE_IN_PROGRESS'
  | 'NO_HOME'
  | 'QUOTA_EXCEEDED'
  | 'DECRYPT_FAILED'
  | 'INVALID_KEY'
  | 'INVALID_CONFIG'
  | 'UNSUPPORTED'
  | (string & {})

export interface PatchBackupErrorOptions {
  cause?: unknown
  path?: string
}

export class PatchBackupError extends Error {
  override readonly name = 'PatchBackupError'
  readonly code: PatchBackupErrorCode
  /** The file or manifest the error is about, when there is one. */
  readonly path?: string

  constructor(code: PatchBackupErrorCode, message: string, options: PatchBackupErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.code = code
    if (options.path !== undefined) this.path = options.path
  }

  toJSON(): { code: string; message: string; path?: string } {
    return this.path === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, path: this.path }
  }
}

export function isPatchBackupError(
  error: unknown,
  code?: PatchBackupErrorCode,
): error is PatchBackupError {
  return error instanceof PatchBackupError && (code === undefined || error.code === code)
}

/** The codes that say stored bytes are corrupt or gone: the verdicts `repair` drops entries for. */
export const BROKEN_BYTES_CODES: readonly string[] = ['BLOB_MISSING', 'INTEGRITY_MISMATCH']

export function isBrokenBytesError(error: unknown): boolean {
  return error instanceof PatchBackupError && BROKEN_BYTES_CODES.includes(error.code)
}

/** Wraps anything thrown by an adapter that is not already ours as STORE_ERROR. */
export function asStoreError(error: unknown, action: string): PatchBackupError {
  if (error instanceof PatchBackupError) return error
  const detail = (error instanceof Error ? error.message : String(error)).replace(/\.+$/, '')
  return new PatchBackupError(
    'STORE_ERROR',
    `The backup store failed to ${action}: ${detail}. Check that the store is reachable and writable, then retry.`,
    { cause: error },
  )
}
