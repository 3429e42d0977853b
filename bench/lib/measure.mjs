// Timing helpers. Every ratio the suite reports compares medians measured in the same run, with
// the contenders interleaved round by round, so load from other processes hits them alike.
import { performance } from 'node:perf_hooks'

export async function time(fn) {
  const start = performance.now()
  const value = await fn()
  return { ms: performance.now() - start, value }
}

export function median(values) {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

/** Collects samples per (row, contender) and reduces them to medians. */
export class Samples {
  rows = new Map()

  add(row, contender, ms) {
    if (!this.rows.has(row)) this.rows.set(row, new Map())
    const byContender = this.rows.get(row)
    if (!byContender.has(contender)) byContender.set(contender, [])
    byContender.get(contender).push(ms)
  }

  medians() {
    const out = {}
    for (const [row, byContender] of this.rows) {
      out[row] = {}
      for (const [contender, values] of byContender) out[row][contender] = median(values)
    }
    return out
  }
}

/** Runs `round(order)` `rounds` times, rotating the contenders' order each round. */
export async function interleaved(contenders, rounds, round) {
  for (let r = 0; r < rounds; r++) {
    const order = contenders.map((_, i) => contenders[(i + r) % contenders.length])
    for (const contender of order) await round(contender, r)
  }
}

export function fmtMs(ms) {
  if (ms === undefined || Number.isNaN(ms)) return '—'
  if (ms >= 10_000) return `${(ms / 1000).toFixed(1)} s`
  if (ms >= 100) return `${ms.toFixed(0)} ms`
  if (ms >= 1) return `${ms.toFixed(1)} ms`
  return `${(ms * 1000).toFixed(0)} µs`
}

export function fmtRatio(x) {
  if (x === undefined || !Number.isFinite(x)) return '—'
  return `${x >= 10 ? x.toFixed(0) : x.toFixed(2)}x`
}

export function fmtBytes(bytes) {
  return `${(bytes / 1024 / 1024).toFixed(0)} MiB`
}
