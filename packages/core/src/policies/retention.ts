import { PatchBackupError } from '../errors.js'
import { checkPruneOptions, type PruneOptions, type PruneResult, type PruneScope } from './prune.js'
import { createMemoryPolicyState, type PolicyState } from './state.js'

/** The stamp automatic retention keeps in its `PolicyState`. */
export const RETENTION_STAMP = 'retention'
export const DEFAULT_RETENTION_INTERVAL_MS = 24 * 60 * 60 * 1000

export interface RetentionPolicy extends Omit<PruneOptions, 'dryRun'> {
  /** Least time between two automatic runs, in milliseconds, by the service's `now`. Default one day. */
  intervalMs?: number
  /**
   * Where the time of the last run is kept and the run is claimed. Default: in memory, so one
   * process; use `createFilePolicyState` from `@patch-backup/manifest` to share it across processes.
   */
  state?: PolicyState
  /** Told the result of every automatic run. */
  onPrune?: (result: PruneResult) => void
  /**
   * Told when an automatic run fails. The backup that triggered it has succeeded either way.
   * Default: `process.emitWarning`.
   */
  onError?: (error: unknown) => void
}

export interface AutoRetention {
  /** Runs the policy if it is due and nobody is running it; never throws. */
  afterBackup(uuid: string): Promise<void>
}

export function createAutoRetention(deps: {
  policy: RetentionPolicy
  now: () => Date
  prune: (options: PruneOptions, scope: PruneScope) => Promise<PruneResult>
}): AutoRetention {
  const { policy, now } = deps
  const { intervalMs = DEFAULT_RETENTION_INTERVAL_MS, state = createMemoryPolicyState() } = policy
  const { onPrune, onError } = policy
  const rules: PruneOptions = {}
  for (const name of ['olderThan', 'maxTotalBytes', 'maxPatchBytes', 'keepLast'] as const) {
    if (policy[name] !== undefined) rules[name] = policy[name]
  }
  checkPruneOptions(rules, 'retention')
  if (typeof intervalMs !== 'number' || !Number.isFinite(intervalMs) || intervalMs < 0) {
    throw new PatchBackupError(
      'INVALID_OPTIONS',
      `retention.intervalMs must be a non-negative number of milliseconds, got ${JSON.stringify(intervalMs)}.`,
    )
  }
  const report =
    onError ??
    ((error: unknown) =>
      process.emitWarning(
        `patch-backup: automatic retention failed: ${error instanceof Error ? error.message : String(error)}`,
      ))

  let running: Promise<void> | undefined
  /** The last stamp seen: lets a busy backup loop skip reading it while it is fresh. */
  let lastSeen: number | undefined

  const due = (stamp: number | undefined, at: number) =>
    stamp === undefined || at - stamp >= intervalMs || stamp - at > intervalMs // far future: a skewed clock

  async function run(uuid: string, at: Date): Promise<void> {
    const release = state.tryLock ? await state.tryLock(RETENTION_STAMP) : async () => {}
    if (!release) return // another process is running it
    try {
      const stamp = (await state.readStamp(RETENTION_STAMP))?.getTime()
      lastSeen = stamp
      if (!due(stamp, at.getTime())) return
      // Stamped before running: a run that fails is not retried until the next interval.
      await state.writeStamp(RETENTION_STAMP, at)
      lastSeen = at.getTime()
      const result = await deps.prune(rules, { exclude: new Set([uuid]) })
      onPrune?.(result)
    } finally {
      await release()
    }
  }

  return {
    async afterBackup(uuid) {
      if (running) return // never twice at once in this process
      const at = now()
      if (!due(lastSeen, at.getTime())) return
      running = run(uuid, at)
        .catch((error: unknown) => {
          try {
            report(error)
          } catch {
            // a throwing reporter must not fail the backup
          }
        })
        .finally(() => {
          running = undefined
        })
      await running
    },
  }
}
