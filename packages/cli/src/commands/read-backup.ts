import type { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import {
  asStoreError,
  type BackupInfo,
  backupKey,
  PatchBackupError,
  VerifyingStream,
} from '@patch-backup/core'
import type { CommandBackups } from './context.js'
import { discard } from './discard.js'

function named(error: unknown, key: string): PatchBackupError {
  const ours = asStoreError(error, `read the backup of ${key}`)
  if (ours.path !== undefined) return ours
  return new PatchBackupError(ours.code, `The backup of ${key} cannot be used: ${ours.message}`, {
    cause: ours,
    path: key,
  })
}

/** The backed-up bytes of one file, verified against their integrity (and size) as they stream. */
async function openBackup(
  backups: CommandBackups,
  uuid: string,
  key: string,
  entry: BackupInfo,
): Promise<Readable> {
  let stream: Readable | undefined
  try {
    stream = await backups.store.open(backupKey(uuid, key), entry.integrity)
  } catch (error) {
    throw named(error, key)
  }
  if (!stream) {
    throw new PatchBackupError(
      'BLOB_MISSING',
      `The stored bytes of ${key} (${entry.integrity}) are gone from the store. Run 'patch-backup verify' to check the rest.`,
      { path: key },
    )
  }
  return stream
}

/** Reads and verifies every byte of a backup and keeps none: what `restore --dry-run` checks. */
export async function checkBackup(
  backups: CommandBackups,
  uuid: string,
  key: string,
  entry: BackupInfo,
): Promise<void> {
  const stream = await openBackup(backups, uuid, key, entry)
  try {
    await pipeline(stream, new VerifyingStream(entry.integrity, entry.size), discard())
  } catch (error) {
    throw named(error, key)
  }
}

/** Reads a verified backup into memory: only for the small text files `diff` compares. */
export async function readBackup(
  backups: CommandBackups,
  uuid: string,
  key: string,
  entry: BackupInfo,
): Promise<Buffer> {
  const stream = await openBackup(backups, uuid, key, entry)
  const chunks: Buffer[] = []
  try {
    await pipeline(
      stream,
      new VerifyingStream(entry.integrity, entry.size),
      discard((chunk) => chunks.push(chunk)),
    )
  } catch (error) {
    throw named(error, key)
  }
  return Buffer.concat(chunks)
}
