// Which process a pid names: a restore journal records its writer's pid, and after a reboot (or
// long enough) the system gives that pid to another process, which would then pass for the
// journal's owner forever. On Linux a process is also named by the boot it runs in and its start
// time in clock ticks since that boot (`/proc/<pid>/stat`, field 22): exact, and no wall-clock
// jump moves it. Elsewhere only the pid is known, as before.

import { readFileSync } from 'node:fs'

export interface ProcessIdentity {
  /** `/proc/sys/kernel/random/boot_id`. */
  boot?: string
  /** Start of the process in clock ticks since boot. */
  start?: number
}

function read(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8')
  } catch {
    return undefined
  }
}

let bootId: string | undefined | null = null
function currentBoot(): string | undefined {
  if (bootId === null) bootId = read('/proc/sys/kernel/random/boot_id')?.trim() || undefined
  return bootId
}

/** When `pid` started, in clock ticks since boot; `undefined` when that cannot be read. */
function startOf(pid: number): number | undefined {
  const stat = read(`/proc/${pid}/stat`)
  if (stat === undefined) return undefined
  // The command name (field 2) may hold spaces and parentheses: count from after its last ')'.
  const start = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19])
  return Number.isSafeInteger(start) ? start : undefined
}

let self: ProcessIdentity | undefined
/** This process's identity, to record beside its pid. */
export function thisProcess(): ProcessIdentity {
  if (self === undefined) {
    const boot = currentBoot()
    const start = boot === undefined ? undefined : startOf(process.pid)
    self = boot === undefined || start === undefined ? {} : { boot, start }
  }
  return self
}

/**
 * Whether the live process `pid` is provably not the one recorded as `recorded`: another boot, or
 * the same pid started at another time. `false` whenever that cannot be told.
 */
export function isOtherProcess(pid: number, recorded: ProcessIdentity): boolean {
  const boot = currentBoot()
  if (typeof recorded.boot !== 'string' || boot === undefined) return false
  if (recorded.boot !== boot) return true
  const start = startOf(pid)
  return typeof recorded.start === 'number' && start !== undefined && start !== recorded.start
}
