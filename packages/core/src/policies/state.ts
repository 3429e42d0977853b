/**
 * Where policies that run by themselves (automatic retention) keep when they last ran, shared by
 * every process using the same backups. The service never touches the file system for this; pass
 * `createFilePolicyState({ dir })` from `@patch-backup/manifest` to share it across processes.
 */
export interface PolicyState {
  /** When `name` last ran, or `undefined` if never. */
  readStamp(name: string): Promise<Date | undefined>
  writeStamp(name: string, at: Date): Promise<void>
  /**
   * Claims `name` for one run, in every process sharing this state, without waiting: resolves a
   * release function, or `undefined` while someone else holds it. Without it, only the stamp and
   * the in-process guard keep runs apart.
   */
  tryLock?(name: string): Promise<(() => Promise<void>) | undefined>
}

/** A `PolicyState` in memory: one process, one service (the default). */
export function createMemoryPolicyState(): PolicyState {
  const stamps = new Map<string, Date>()
  const held = new Set<string>()
  return {
    async readStamp(name) {
      const at = stamps.get(name)
      return at && new Date(at)
    },
    async writeStamp(name, at) {
      stamps.set(name, new Date(at))
    },
    async tryLock(name) {
      if (held.has(name)) return undefined
      held.add(name)
      return async () => {
        held.delete(name)
      }
    },
  }
}
