// The service suite's groups, one file per behaviour, each registered by `runServiceSuite`.
// A group must not keep state of its own: each test gets a fresh fixture and project through `t`.

import type { PatchBackups, PatchBackupsOptions } from '@patch-backup/core'
import type { ServiceFixture } from '../fixtures.js'

export const UUID = 'abc-123'
export const LODASH = 'node_modules/lodash/index.js'
export const BAD_UUIDS = ['../x', 'a/b', '', 'x'.repeat(200), 'a\0b', '.', '..', '-leading-dash']

/**
 * What every group of the service suite gets from `runServiceSuite`: the running test's fixture,
 * service and clock (fresh before each test), and helpers on its temp project dir.
 */
export interface ServiceTest {
  /** `confined`: project-relative paths, `projectRoot` set; `absolute`: absolute paths, no root. */
  readonly mode: 'confined' | 'absolute'
  readonly fixture: ServiceFixture
  readonly backups: PatchBackups
  /** What the service's `now` returns. */
  clock: Date
  /** The temp project dir. */
  readonly dir: string
  /**
   * What a test gives the service for a project file, and the key it expects back: `file` itself
   * when confined, the absolute path (joined as text, so the service normalizes it) otherwise.
   */
  key(file: string): string
  /** The absolute path of a project file (an absolute `file` is taken as it is). */
  at(file: string): string
  write(file: string, content: string | Buffer, mode?: number): Promise<void>
  read(file: string): Promise<string>
  /** Another service on the same store, repository and project, with `extra` options. */
  open(extra?: Partial<PatchBackupsOptions>): PatchBackups
}

/** A promise and the function that resolves it (Node 20 has no Promise.withResolvers). */
export function signal(): { done: Promise<void>; fire: () => void } {
  let fire!: () => void
  const done = new Promise<void>((resolve) => {
    fire = resolve
  })
  return { done, fire }
}

export async function caught(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => undefined,
    (error: unknown) => error,
  )
}
