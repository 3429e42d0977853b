import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { isOtherProcess, thisProcess } from '../src/restore/process-identity.js'

/** Start of `pid` in clock ticks since boot, read as the kernel gives it. */
function startOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19])
}

const linux = (() => {
  try {
    readFileSync('/proc/sys/kernel/random/boot_id')
    return true
  } catch {
    return false
  }
})()

describe.runIf(linux)('a restore journal owner is told from a reused pid', () => {
  const me = thisProcess()
  const now = Date.now()

  it('records boot, namespaces and start', () => {
    expect(me).toEqual({
      boot: expect.any(String),
      ns: expect.stringContaining('pid:['),
      start: startOf(process.pid),
    })
  })

  it('never calls a live owner whose boot, namespaces and start match another process', () => {
    const parent = { ...me, start: startOf(process.ppid) }
    expect(isOtherProcess(process.ppid, parent, now)).toBe(false)
  })

  it('calls a pid started at another time another process, in the same kernel and namespaces', () => {
    expect(isOtherProcess(1, { ...me, start: startOf(1) + 1 }, now)).toBe(true)
    expect(isOtherProcess(1, { ...me, start: startOf(1) }, now)).toBe(false)
  })

  it('tells nothing across namespaces, or from a journal that recorded nothing', () => {
    expect(isOtherProcess(1, { ...me, ns: 'pid:[1] time:[1]', start: 0 }, now)).toBe(false)
    expect(isOtherProcess(1, {}, now)).toBe(false)
    expect(isOtherProcess(1, { boot: me.boot }, now)).toBe(false)
  })

  it('calls another boot a reboot only for a journal written before this boot', () => {
    const other = { ...me, boot: '00000000-0000-4000-8000-000000000000' }
    expect(isOtherProcess(1, other, now)).toBe(false)
    expect(isOtherProcess(1, other, Date.parse('2000-01-01T00:00:00.000Z'))).toBe(true)
  })
})
