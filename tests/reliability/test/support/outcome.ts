import { isPatchBackupError, type PatchBackupError } from '@patch-backup/core'
import { expect } from 'vitest'

export type Outcome<T> = { ok: true; value: T } | { ok: false; error: PatchBackupError }

const CODE = /^[A-Z][A-Z0-9]*(_[A-Z0-9]+)*$/

/**
 * Settles a call and insists that a failure is explained: a PatchBackupError with an
 * UPPER_SNAKE code and a message. Anything else (a raw fs error, a TypeError) fails the test.
 */
export async function settle<T>(call: () => Promise<T>): Promise<Outcome<T>> {
  try {
    return { ok: true, value: await call() }
  } catch (error) {
    if (!isPatchBackupError(error)) {
      throw new Error(`expected a PatchBackupError, got ${String(error)}`, { cause: error })
    }
    expect(error.code).toMatch(CODE)
    expect(error.message.length).toBeGreaterThan(10)
    return { ok: false, error }
  }
}

/** The PatchBackupError a call rejects with; fails the test if it resolves or throws anything else. */
export async function failure(call: () => Promise<unknown>): Promise<PatchBackupError> {
  const outcome = await settle(call)
  if (outcome.ok) throw new Error(`expected a rejection, got ${JSON.stringify(outcome.value)}`)
  return outcome.error
}
