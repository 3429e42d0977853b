import {
  type PrunedPatch,
  type PruneOptions,
  type PruneResult,
  parseByteSize,
  parseDuration,
} from '@patch-backup/core'
import { UsageError } from '../cli/usage-error.js'
import type { CommandContext } from './context.js'
import { summarize } from './list.js'

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

/** A patch pruned; `size` as `list` counts it, `bytes` what removing it frees. */
export interface PrunedPatchSummary extends PrunedPatch {
  /** Original bytes of the patch's files, summed: the SIZE `list` shows for it. */
  size: number
}

export interface PruneCommandResult extends PruneResult {
  removed: PrunedPatchSummary[]
}

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
  const rules = pruneRules(options)
  // Read before the manifests go: each patch's size as `list` shows it, beside what it frees.
  const sizes = new Map<string, number>()
  for (const uuid of await backups.listAllPatches()) {
    const manifest = await backups.getPatchMetadata(uuid).catch(() => undefined)
    if (manifest) sizes.set(uuid, summarize(manifest).size)
  }
  const result = await backups.prune(rules)
  return { ...result, removed: result.removed.map((p) => ({ ...p, size: sizes.get(p.uuid) ?? 0 })) }
}
