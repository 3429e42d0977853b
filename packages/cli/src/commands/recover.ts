import { parseUuid } from '@patch-backup/core'
import type { CommandContext } from './context.js'
import { patchNotFound } from './not-found.js'

export interface RecoverOptions {
  uuid: string
  /** Also a restore whose process looks alive (its process id was reused). */
  force?: boolean
}

export interface RecoverCommandResult {
  uuid: string
  /**
   * `rolled-forward`: the interrupted restore was finished; `rolled-back`: every file is as it was
   * before it; `nothing`: no restore of this patch was interrupted.
   */
  outcome: 'rolled-forward' | 'rolled-back' | 'nothing'
  files: string[]
}

/** Finishes or rolls back a restore of the patch that a crash interrupted, if there is one. */
export async function recover(
  options: RecoverOptions,
  { backups }: CommandContext,
): Promise<RecoverCommandResult> {
  const uuid = parseUuid(options.uuid)
  if (!(await backups.getPatchMetadata(uuid))) throw patchNotFound(uuid)
  const result = await backups.recover(uuid, { force: options.force === true })
  if (!result) return { uuid, outcome: 'nothing', files: [] }
  return { uuid, outcome: result.outcome, files: [...result.files].sort() }
}
