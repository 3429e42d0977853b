import {
  type PruneOptions,
  type PruneResult,
  parseByteSize,
  parseDuration,
} from '@patch-backup/core'
import { UsageError } from '../cli/usage-error.js'
import type { CommandContext } from './context.js'

export interface PruneCommandOptions {
  /** `--older-than 30d` */
  olderThan?: string
  /** `--max-size 2GB`: total bytes to keep at most. */
  maxSize?: string
  /** `--max-patch-size 200MB` */
  maxPatchSize?: string
  /** `--keep-last N` */
  keepLast?: string
  dryRun?: boolean
}

export type PruneCommandResult = PruneResult

/** A usage error (exit 2) whose usage line the entry point fills in. */
const usage = (message: string) => new UsageError(message, '', '')

function parse<T>(flag: string, value: string, fn: (v: string) => T, example: string): T {
  try {
    return fn(value)
  } catch {
    throw usage(`${flag}: ${JSON.stringify(value)} is not valid; expected ${example}.`)
  }
}

/** The rules a command line asks for; no rule at all is a usage error. */
export function pruneRules(options: PruneCommandOptions): PruneOptions {
  const rules: PruneOptions = { dryRun: !!options.dryRun }
  if (options.olderThan !== undefined)
    rules.olderThan = parse(
      '--older-than',
      options.olderThan,
      parseDuration,
      'a duration like 30d, 12h, 15m or 500ms',
    )
  if (options.maxSize !== undefined)
    rules.maxTotalBytes = parse(
      '--max-size',
      options.maxSize,
      parseByteSize,
      'a size like 2GB, 512MiB or a number of bytes',
    )
  if (options.maxPatchSize !== undefined)
    rules.maxPatchBytes = parse(
      '--max-patch-size',
      options.maxPatchSize,
      parseByteSize,
      'a size like 200MB, 512MiB or a number of bytes',
    )
  if (options.keepLast !== undefined) {
    if (!/^\d+$/.test(options.keepLast.trim()))
      throw usage(
        `--keep-last: ${JSON.stringify(options.keepLast)} is not valid; expected a whole number of patches.`,
      )
    rules.keepLast = Number(options.keepLast)
  }
  const given = [rules.olderThan, rules.maxTotalBytes, rules.maxPatchBytes, rules.keepLast]
  if (given.every((r) => r === undefined))
    throw usage(
      'prune needs a rule: --older-than <duration>, --max-size <size>, --max-patch-size <size> or --keep-last <n> (e.g. prune --older-than 30d --dry-run)',
    )
  return rules
}

/** Removes the oldest patches by the rules given (or, with --dry-run, lists what would go). */
export async function prune(
  options: PruneCommandOptions,
  { backups }: CommandContext,
): Promise<PruneCommandResult> {
  return backups.prune(pruneRules(options))
}
