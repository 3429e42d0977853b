import { type LastRestore, parseUuid, type UndoResult } from '@patch-backup/core'
import type { CommandContext } from './context.js'
import { patchNotFound } from './not-found.js'

export interface UndoOptions {
  uuid: string
}

export interface UndoCommandResult extends UndoResult {
  uuid: string
  /** Of `undone`: files that did not exist before the restore, so undoing it deleted them. */
  removed: string[]
}

/** Puts back what the last all-or-nothing or forced restore of a patch replaced. */
export async function undo(
  options: UndoOptions,
  { backups }: CommandContext,
): Promise<UndoCommandResult> {
  const uuid = parseUuid(options.uuid)
  const manifest = await backups.getPatchMetadata(uuid)
  if (!manifest) throw patchNotFound(uuid)
  const last = manifest.lastRestore as LastRestore | undefined
  const result = await backups.undoRestore(uuid)
  const removed = result.undone.filter((path) => last?.files?.[path] === null)
  return { uuid, ...result, removed }
}
