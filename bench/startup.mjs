// Start-up of typical commands, as a user runs them: the CLI's bin spawned, medians of N runs.
//   node bench/startup.mjs [--runs=15] [--trace] [--profiles=3]
// Prints each command's median wall time and its ratio to `--version` (the ratio of the medians,
// and the median of the ratios round by round, which holds better when the machine's speed
// drifts). --trace also prints, per command, what it loads (ES modules, CommonJS files, node
// built-ins) and where its CPU time goes by package (bench/lib/load-trace.mjs).
import { spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { formatTrace, traceCommand } from './lib/load-trace.mjs'

const BIN = fileURLToPath(new URL('../packages/cli/bin/patch-backup.js', import.meta.url))
const flag = (name, fallback) =>
  Number(process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? fallback)
const runs = flag('runs', 15)
const profiles = flag('profiles', 3)
const trace = process.argv.includes('--trace')

const work = mkdtempSync(path.join(os.tmpdir(), 'pb-startup-'))
const project = path.join(work, 'project')
const store = path.join(work, 'store')
const files = [1, 2, 3, 4, 5].map((i) => `node_modules/pkg/f${i}.js`)
mkdirSync(path.join(project, 'node_modules', 'pkg'), { recursive: true })
for (const f of files)
  writeFileSync(path.join(project, f), `module.exports = ${'1'.repeat(4000)}\n`)
// Nothing from the caller's environment that would redirect or colour the runs.
const env = { ...process.env }
for (const name of ['PATCH_BACKUP_DIR', 'PATCH_BACKUP_STORE', 'NODE_OPTIONS', 'FORCE_COLOR'])
  delete env[name]

const node = (args, extra = []) =>
  spawnSync(process.execPath, [...extra, ...args], {
    cwd: project,
    env,
    stdio: ['ignore', 'ignore', 'pipe'],
  })
node([BIN, '--dir', store, 'backup', 'p-1', ...files])
node([BIN, '--dir', store, 'backup', 'p-2', ...files])

// Each entry gives the arguments of its n-th run. A typical backup starts a patch: each run backs
// the 5 files up under a new uuid (same bytes, so the store does not grow), in a root of its own
// so that list and status see the same two patches at every run. An overwrite releases its pins
// (store lookups and removals) and is shown apart.
const fresh = { root: path.join(work, 'fresh'), n: 0 }
const commands = {
  'node -e 0': () => ['-e', '0'],
  '--version': () => [BIN, '--version'],
  list: () => [BIN, '--dir', store, 'list'],
  status: () => [BIN, '--dir', store, 'status', 'p-1'],
  'backup (5 files)': () => [
    BIN,
    '--dir',
    fresh.root,
    '--no-auto-prune',
    'backup',
    `new-${++fresh.n}`,
    ...files,
  ],
  'backup --overwrite (5 files)': () => [
    BIN,
    '--dir',
    store,
    '--no-auto-prune',
    'backup',
    'p-2',
    '--overwrite',
    ...files,
  ],
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b)
  const mid = Math.floor(s.length / 2)
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2
}
const times = Object.fromEntries(Object.keys(commands).map((k) => [k, []]))
for (const args of Object.values(commands)) node(args()) // warm the file cache
for (let i = 0; i < runs; i++) {
  // Interleaved, so load from other processes hits every command alike.
  for (const [name, args] of Object.entries(commands)) {
    const t = process.hrtime.bigint()
    const r = node(args())
    times[name].push(Number(process.hrtime.bigint() - t) / 1e6)
    if (r.status !== 0) throw new Error(`${name} exited ${r.status}: ${r.stderr}`)
  }
}
const base = median(times['--version'])
const paired = (name) => median(times[name].map((t, i) => t / times['--version'][i]))
console.log(
  `Node ${process.version}, ${os.cpus().length} CPUs; ${runs} spawned runs of each, interleaved`,
)
console.log(`${'command'.padEnd(30)} median   x --version (medians)  (per round)`)
for (const [name, xs] of Object.entries(times))
  console.log(
    `${name.padEnd(30)} ${median(xs).toFixed(0).padStart(4)} ms  ${`${(median(xs) / base).toFixed(2)}x`.padStart(10)}  ${`${paired(name).toFixed(2)}x`.padStart(20)}`,
  )

if (trace) {
  console.log(`\nLoad trace (CPU time: mean of ${profiles} profiled runs, sampled every 100 µs)`)
  let baseline
  for (const [name, args] of Object.entries(commands)) {
    if (name === 'node -e 0') continue
    const t = traceCommand(name, args, { cwd: project, env, runs: profiles })
    baseline ??= t
    console.log(`\n${formatTrace(t, name === '--version' ? undefined : baseline).join('\n')}`)
  }
}
rmSync(work, { recursive: true, force: true })
