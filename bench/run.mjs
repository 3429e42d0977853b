#!/usr/bin/env node
// pnpm bench [--quick] [--json] [--only=files,medium,big,scaling,cli]
//
// Runs each scenario with three contenders side by side (a plain fs.copyFile loop, the naive
// cacache + JSON design, and patch-backup's public API), prints a table of median times and
// ratios, then the targets. Ratios compare numbers from this one run only.
// --quick: small sizes (~20 s) for CI; exits 1 only on a gross regression that a re-measure of
// its scenario confirms (twice), never on a miss.
// --json: one JSON document on stdout (progress still goes to stderr).
import os from 'node:os'
import { measureConfirmed } from './lib/confirm.mjs'
import { CONTENDERS } from './lib/contenders.mjs'
import { KIB, MIB } from './lib/fixtures.mjs'
import { fmtMs, fmtRatio } from './lib/measure.mjs'
import { bigFile, coldStart, manyFiles, scaling } from './lib/scenarios.mjs'
import { evaluate } from './lib/targets.mjs'

const args = process.argv.slice(2)
const quick = args.includes('--quick')
const json = args.includes('--json')
const only = args
  .find((a) => a.startsWith('--only='))
  ?.slice('--only='.length)
  .split(',')
const unknown = args.filter((a) => !['--quick', '--json'].includes(a) && !a.startsWith('--only='))
if (unknown.length > 0) {
  process.stderr.write(
    `bench: unknown option ${unknown[0]}\nusage: node bench/run.mjs [--quick] [--json] [--only=files,medium,big,scaling,cli]\n`,
  )
  process.exit(2)
}
const started = performance.now()
const GROUPS = ['files', 'medium', 'big', 'scaling', 'cli']
const wants = (name) => !only || only.includes(name)
const describe = (c) => `${c.name} ${fmtValue(c)} (limit ${c.grossLimit})`
const since = () => `${((performance.now() - started) / 1000).toFixed(0)} s`
const log = (line) => process.stderr.write(`${line}\n`)

const config = quick
  ? {
      small: { label: '200 x 4 KiB', count: 200, size: 4 * KIB, rounds: 3 },
      medium: { label: '10 x 1 MiB', count: 10, size: MIB, rounds: 1 },
      big: { bytes: 64 * MIB, rounds: 1 },
      scaling: { small: 10, large: 200, lookups: 200, rounds: 3 },
      cli: { rounds: 5 },
    }
  : {
      small: { label: '1000 x 4 KiB', count: 1000, size: 4 * KIB, rounds: 3 },
      medium: { label: '100 x 1 MiB', count: 100, size: MIB, rounds: 3 },
      big: { bytes: 1024 * MIB, rounds: 2 },
      scaling: { small: 10, large: 10_000, lookups: 2000, rounds: 5 },
      cli: { rounds: 15 },
    }

log(
  `patch-backup bench (${quick ? 'quick' : 'full'}), node ${process.version}, ${os.cpus().length} cpus`,
)

/** Measures the named scenario groups; every row is tagged with the group that measured it. */
async function measure(groups) {
  const rows = []
  const facts = {}
  const tagged = (scenario, measured) => rows.push(...measured.map((r) => ({ ...r, scenario })))
  if (groups.includes('files')) {
    log(`[${since()}] ${config.small.label} ...`)
    const small = await manyFiles({ ...config.small, log })
    tagged('files', small.rows)
    facts.eventLoopP99Ms = small.facts.eventLoopP99Ms
  }
  if (groups.includes('medium')) {
    log(`[${since()}] ${config.medium.label} ...`)
    tagged('medium', (await manyFiles({ ...config.medium, log })).rows)
  }
  if (groups.includes('big')) {
    log(`[${since()}] 1 file of ${config.big.bytes / MIB} MiB ...`)
    const big = await bigFile({ ...config.big, log })
    tagged('big', big.rows)
    Object.assign(facts, big.facts)
  }
  if (groups.includes('scaling')) {
    log(
      `[${since()}] lookups and cleanup with ${config.scaling.small} vs ${config.scaling.large} patches ...`,
    )
    const scaled = await scaling({ ...config.scaling, log })
    tagged('scaling', scaled.rows)
    facts.scaling = scaled.facts
  }
  if (groups.includes('cli')) {
    log(`[${since()}] cold start ...`)
    const cold = await coldStart(config.cli)
    tagged('cli', cold.rows)
    facts.coldStart = cold.facts
  }
  return { rows, facts }
}

const { rows, facts, checks, remeasured } = await measureConfirmed({
  groups: GROUPS.filter(wants),
  measure,
  evaluate: (measured) => evaluate({ config, ...measured }),
  attempts: quick ? 3 : 1,
  onRetry: ({ attempt, attempts, scenarios, gross }) =>
    log(
      `[${since()}] gross: ${gross.map(describe).join('; ')}; measuring ${scenarios.join(', ')} again (${attempt}/${attempts})`,
    ),
})
const gross = checks.filter((c) => c.gross)
rows.sort((a, b) => GROUPS.indexOf(a.scenario) - GROUPS.indexOf(b.scenario))
const result = { mode: quick ? 'quick' : 'full', config, rows, facts, remeasured }
const seconds = (performance.now() - started) / 1000

function fmtValue(c) {
  if (c.unit === 'bool') return c.value ? 'yes' : 'no'
  if (c.unit === 'MiB') return `${c.value.toFixed(0)} MiB`
  if (c.unit === 'ms') return `${c.value.toFixed(1)} ms`
  return fmtRatio(c.value)
}

function table() {
  const header = ['scenario', ...CONTENDERS, 'pb / floor', 'naive / pb']
  const lines = rows.map((r) => {
    const t = r.times
    return [
      r.label,
      ...CONTENDERS.map((c) => fmtMs(t[c])),
      fmtRatio(t['patch-backup'] / t.floor),
      fmtRatio(t.naive / t['patch-backup']),
    ]
  })
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)))
  const fmt = (cells) =>
    `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join(' | ')} |`
  const rule = `|${widths.map((w, i) => (i === 0 ? `${'-'.repeat(w + 1)}-` : `${'-'.repeat(w + 1)}:`)).join('|')}|`
  return [fmt(header), rule, ...lines.map(fmt)].join('\n')
}

function targetTable() {
  const lines = checks.map((c) => [
    c.name,
    fmtValue(c),
    c.target ?? '(CI guard)',
    c.met === undefined ? '—' : c.met ? 'met' : 'MISSED',
    c.grossLimit ? (c.gross ? `FAIL (${c.grossLimit})` : `ok (${c.grossLimit})`) : '—',
  ])
  const header = ['target', 'measured', 'goal', 'status', 'gross check']
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)))
  const fmt = (cells) => `| ${cells.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`
  const rule = `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`
  return [fmt(header), rule, ...lines.map(fmt)].join('\n')
}

if (json) {
  process.stdout.write(
    `${JSON.stringify({ ...result, checks, seconds, node: process.version, cpus: os.cpus().length }, null, 2)}\n`,
  )
} else {
  process.stdout.write(`\n${table()}\n\n${targetTable()}\n\n`)
  process.stdout.write(
    `${checks.filter((c) => c.met).length}/${checks.filter((c) => c.target).length} targets met, in ${seconds.toFixed(0)} s.\n`,
  )
}
if (quick && gross.length > 0) {
  log(`bench: gross regression, on every measurement: ${gross.map(describe).join('; ')}`)
  process.exitCode = 1
}
