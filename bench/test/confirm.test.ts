import { describe, expect, it } from 'vitest'
import { measureConfirmed } from '../lib/confirm.mjs'

interface Row {
  label: string
  scenario: string
  ms: number
}

/** A fake bench: each scenario yields one row per call from a queue of timings. */
function fakeBench(timings: Record<string, number[]>) {
  const calls: string[][] = []
  const measure = async (groups: string[]) => {
    calls.push(groups)
    const rows: Row[] = groups.map((g) => {
      const ms = timings[g]?.shift()
      if (ms === undefined) throw new Error(`no timing left for ${g}`)
      return { label: g, scenario: g, ms }
    })
    return { rows, facts: {} }
  }
  const evaluate = ({ rows }: { rows: Row[] }) =>
    rows.map((r) => ({ name: `${r.label} fast`, scenario: r.scenario, gross: r.ms > 100 }))
  return { calls, measure, evaluate }
}

describe('measureConfirmed', () => {
  it('clears a gross check that a re-measure does not repeat, measuring only its scenario', async () => {
    const bench = fakeBench({ files: [500, 10], cli: [5] })
    const out = await measureConfirmed({ groups: ['files', 'cli'], ...bench, attempts: 3 })
    expect(bench.calls).toEqual([['files', 'cli'], ['files']])
    expect(out.checks.filter((c) => c.gross)).toEqual([])
    expect(out.rows.map((r) => `${r.label}=${r.ms}`).sort()).toEqual(['cli=5', 'files=10'])
    expect(out.remeasured).toEqual([{ attempt: 2, scenarios: ['files'], gross: ['files fast'] }])
  })

  it('keeps a check gross when every measurement of it is gross', async () => {
    const bench = fakeBench({ files: [500, 400, 300], cli: [5] })
    const out = await measureConfirmed({ groups: ['files', 'cli'], ...bench, attempts: 3 })
    expect(bench.calls).toEqual([['files', 'cli'], ['files'], ['files']])
    expect(out.checks.filter((c) => c.gross).map((c) => c.name)).toEqual(['files fast'])
  })

  it('does not fail a check that was fine first and only gross on a later re-measure', async () => {
    // files and big fail together; on the re-measure files recovers, big stays; then big recovers
    // while files (not re-measured) keeps its fine second result.
    const bench = fakeBench({ files: [500, 10], big: [500, 500, 10] })
    const out = await measureConfirmed({ groups: ['files', 'big'], ...bench, attempts: 3 })
    expect(bench.calls).toEqual([['files', 'big'], ['files', 'big'], ['big']])
    expect(out.checks.filter((c) => c.gross)).toEqual([])
  })

  it('measures once when asked for one attempt', async () => {
    const bench = fakeBench({ files: [500] })
    const out = await measureConfirmed({ groups: ['files'], ...bench, attempts: 1 })
    expect(bench.calls).toEqual([['files']])
    expect(out.checks.map((c) => c.gross)).toEqual([true])
  })
})
