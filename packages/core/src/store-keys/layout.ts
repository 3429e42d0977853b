// Store keys: the name of every key the service puts in a store; pins that keep bytes alive.
// It decides nothing about freeing: it removes no key but the pins it made itself.

import { createHash, randomBytes } from 'node:crypto'

export const BACKUP_KEY_PREFIX = 'socket:patch:backup:'

/** The store key of one file of one patch: `socket:patch:backup:<uuid>:<16 hex of sha256(path)>`. */
export function backupKey(uuid: string, fileKey: string): string {
  const digest = createHash('sha256').update(fileKey).digest('hex').slice(0, 16)
  return `${BACKUP_KEY_PREFIX}${uuid}:${digest}`
}

/** The prefix every store key of one patch starts with. */
export function patchKeyPrefix(uuid: string): string {
  return `${BACKUP_KEY_PREFIX}${uuid}:`
}

/**
 * The store key of the bytes a restore replaced (kept so `undoRestore` can put them back). Each
 * restore gets its own keys, so a later restore that fails half-way never re-points the keys the
 * last completed restore's undo needs.
 */
export function snapshotKey(uuid: string, fileKey: string, restoreId?: string): string {
  const digest = createHash('sha256').update(fileKey).digest('hex').slice(0, 16)
  return `${BACKUP_KEY_PREFIX}${uuid}:snapshot-${restoreId ? `${restoreId}-` : ''}${digest}`
}

/**
 * A restore's id: when it started (base 36 ms) and a random part. The time lets `gc` tell the
 * snapshots of a restore still running (stored, not yet recorded in the manifest) from leftovers.
 */
export function newRestoreId(nowMs: number): string {
  return `${nowMs.toString(36)}.${randomBytes(4).toString('hex')}`
}

const TIMED_SNAPSHOT = /:snapshot-([0-9a-z]+)\.[0-9a-f]{8}-[0-9a-f]{16}$/

/** How long a restore may take between storing a snapshot and recording it; `gc` leaves younger ones. */
export const SNAPSHOT_GRACE_MS = 60 * 60 * 1000

/** Whether `key` is the snapshot of a restore that started less than `SNAPSHOT_GRACE_MS` ago. */
export function isYoungSnapshot(key: string, nowMs: number): boolean {
  const started = TIMED_SNAPSHOT.exec(key)?.[1]
  return started !== undefined && nowMs - Number.parseInt(started, 36) < SNAPSHOT_GRACE_MS
}

/**
 * The prefix of the pin keys of one file: short-lived keys that hold its recorded bytes while an
 * overwrite re-points its backup key. Each overwrite pins under a key of its own (`token`), so
 * one overwrite's release never takes away another's pin.
 */
export function pinPrefix(uuid: string, fileKey: string): string {
  const digest = createHash('sha256').update(fileKey).digest('hex').slice(0, 16)
  return `${BACKUP_KEY_PREFIX}${uuid}:pin-${digest}-`
}

export function pinKey(uuid: string, fileKey: string, token: string): string {
  return `${pinPrefix(uuid, fileKey)}${token}`
}
