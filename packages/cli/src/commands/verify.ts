import { parseUuid, type VerifyReport } from '@patch-backup/core'
import type { CommandBackups, CommandContext } from './context.js'
import { patchNotFound } from './not-found.js'

export interface VerifyOptions {
  /** Verify this patch only; default every patch. */
  uuid?: string
}

export type VerifyResult = VerifyReport

/** What the bar should count up to: the files and bytes of the patches to verify. */
async function totals(backups: CommandBackups, uuid: string | undefined) {
  const uuids = uuid === undefined ? await backups.listAllPatches() : [uuid]
  let files = 0
  let bytes = 0
  for (const id of uuids) {
    const manifest = await backups.getPatchMetadata(id).catch(() => undefined)
    for (const entry of Object.values(manifest?.files ?? {})) {
      files++
      bytes += entry.size
    }
  }
  return { files, bytes }
}

const VERIFY_ADVICE =
  /\s*(?:Nothing was written[;.]\s*)?(?:[Rr]un|[Tt]ry) 'patch-backup verify'[^.]*\./g

export function withoutVerifyAdvice(message: string): string {
  return message.replace(VERIFY_ADVICE, '').replace(/;$/, '.').trim()
}

/** Re-hashes every stored blob of one patch or all; reports each file that is corrupt or missing. */
export async function verify(
  options: VerifyOptions,
  { backups, progress }: CommandContext,
): Promise<VerifyResult> {
  const uuid = options.uuid === undefined ? undefined : parseUuid(options.uuid)
  if (progress) progress.start('verify', await totals(backups, uuid))
  let report: VerifyReport
  try {
    report = await backups.verify(uuid)
  } finally {
    progress?.stop()
  }
  if (uuid !== undefined && report.patches === 0) throw patchNotFound(uuid)
  // The store's messages are written for a restore that met damaged bytes, and send the reader
  // to `verify`: this is that, so the advice is left out.
  for (const problem of report.problems) problem.message = withoutVerifyAdvice(problem.message)
  return report
}
