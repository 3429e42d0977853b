// Which process a pid names: a restore journal records its writer's pid, and after a reboot (or
// long enough) the system gives that pid to another process, which would then pass for the
// journal's owner forever. On Linux a process is also named by the boot it runs in, its pid and
// time namespaces, and its start in clock ticks since boot (`/proc/<pid>/stat`, field 22): exact,
// and no wall-clock jump moves it. Elsewhere, or whenever any part cannot be read, only the pid
// is known, as before.
//
// Wrongly calling an owner gone would let two processes write the same files, so every answer
// here errs towards "the same process": a difference counts only when both sides were read in
// the same kernel and namespaces.

import { readFileSync, readlinkSync } from 'node:fs'

export interface ProcessIdentity {
  /** `/proc/sys/kernel/random/boot_id`. */
  boot?: string
  /** The pid and time namespaces the pid and start were read in. */
  ns?: string
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

function link(file: string): string {
  try {
    return readlinkSync(file)
  } catch {
    return '-'
  }
}

/** A stat line's pid (field 1) and start (field 22); the name (field 2) may hold ')' and spaces. */
function statOf(file: string): { pid: number; start: number } | undefined {
  const stat = read(file)
  if (stat === undefined) return undefined
  const pid = Number(stat.slice(0, stat.indexOf(' ')))
  const start = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19])
  return Number.isSafeInteger(pid) && Number.isSafeInteger(start) ? { pid, start } : undefined
}

interface Here {
  boot: string
  ns: string
  /** When this boot began, ms since the epoch (`btime` of `/proc/stat`). */
  bootedAt: number
  self: ProcessIdentity
}

let here: Here | undefined | null = null
/** This kernel, namespaces and process, when `/proc` is this process's own; else `undefined`. */
function current(): Here | undefined {
  if (here !== null) return here
  here = undefined
  const boot = read('/proc/sys/kernel/random/boot_id')?.trim()
  const self = statOf('/proc/self/stat')
  const btime = Number(/^btime (\d+)$/m.exec(read('/proc/stat') ?? '')?.[1])
  // A /proc of another pid namespace (unshare without --mount-proc) names other processes.
  if (!boot || self?.pid !== process.pid || !Number.isSafeInteger(btime)) return here
  const ns = `${link('/proc/self/ns/pid')} ${link('/proc/self/ns/time')}`
  here = { boot, ns, bootedAt: btime * 1000, self: { boot, ns, start: self.start } }
  return here
}

/** This process's identity, to record beside its pid (empty where it cannot be told). */
export function thisProcess(): ProcessIdentity {
  return current()?.self ?? {}
}

/**
 * Whether the live process `pid` is provably not the owner `recorded`, whose journal was written
 * at `writtenAt` (ms): the journal predates this boot, or the pid, read in the same kernel and
 * namespaces, started at another time. `false` whenever that cannot be told.
 */
export function isOtherProcess(pid: number, recorded: ProcessIdentity, writtenAt: number): boolean {
  const now = current()
  if (now === undefined || typeof recorded.boot !== 'string') return false
  // Another kernel: a reboot only if the journal is older than this boot (a live VM or sandbox
  // with the same host name may run another kernel; its journal is left to the host rule).
  if (recorded.boot !== now.boot) return writtenAt < now.bootedAt
  if (recorded.ns !== now.ns || typeof recorded.start !== 'number') return false
  const live = statOf(`/proc/${pid}/stat`)
  return live?.pid === pid && live.start !== recorded.start
}
