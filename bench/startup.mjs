// Start-up of typical commands, as a user runs them: the built CLI spawned, medians of N runs.
//   node bench/startup.mjs [--runs=15] [--trace]
// --trace also prints, per command, the packages it loads (ESM and CommonJS).
import { spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const BIN = fileURLToPath(new URL('../packages/cli/dist/bin.js', import.meta.url))
const runs = Number(process.argv.find((a) => a.startsWith('--runs='))?.slice(7) ?? 15)
const trace = process.argv.includes('--trace')

const work = mkdtempSync(path.join(os.tmpdir(), 'pb-startup-'))
const project = path.join(work, 'project')
const store = path.join(work, 'store')
const files = [1, 2, 3, 4, 5].map((i) => `node_modules/pkg/f${i}.js`)
mkdirSync(path.join(project, 'node_modules', 'pkg'), { recursive: true })
for (const f of files)
  writeFileSync(path.join(project, f), `module.exports = ${'1'.repeat(4000)}\n`)

const node = (args, extra = []) =>
  spawnSync(process.execPath, [...extra, ...args], {
    cwd: project,
    env: { ...process.env, TRACE_TO: path.join(work, 'trace.txt') },
    stdio: ['ignore', 'ignore', 'pipe'],
  })
node([BIN, '--dir', store, 'backup', 'p-1', ...files])

const commands = {
  'node -e 0': ['-e', '0'],
  '--version': [BIN, '--version'],
  list: [BIN, '--dir', store, 'list'],
  status: [BIN, '--dir', store, 'status', 'p-1'],
  'backup (5 files)': [
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
  return s[Math.floor(s.length / 2)]
}
const times = Object.fromEntries(Object.keys(commands).map((k) => [k, []]))
for (let i = 0; i < runs; i++) {
  // Interleaved, so load from other processes hits every command alike.
  for (const [name, args] of Object.entries(commands)) {
    const t = process.hrtime.bigint()
    const r = node(args)
    times[name].push(Number(process.hrtime.bigint() - t) / 1e6)
    if (r.status !== 0) throw new Error(`${name} exited ${r.status}: ${r.stderr}`)
  }
}
const base = median(times['--version'])
console.log(`median wall time of ${runs} spawned runs each (ratio to --version)`)
for (const [name, xs] of Object.entries(times))
  console.log(
    `${name.padEnd(18)} ${median(xs).toFixed(0).padStart(5)} ms  ${(median(xs) / base).toFixed(2)}x`,
  )

if (trace) {
  const tracer = path.join(work, 'tracer.mjs')
  const hook = `import { appendFileSync } from 'node:fs'
export async function resolve(s, c, next) { const r = await next(s, c); appendFileSync(process.env.TRACE_TO, r.url + '\\n'); return r }`
  writeFileSync(
    tracer,
    `import { register, createRequire } from 'node:module'
import { appendFileSync } from 'node:fs'
register('data:text/javascript,' + encodeURIComponent(${JSON.stringify(hook)}))
const M = createRequire(import.meta.url)('node:module')
process.on('exit', () => appendFileSync(process.env.TRACE_TO, Object.keys(M._cache).join('\\n') + '\\n'))
`,
  )
  for (const [name, args] of Object.entries(commands)) {
    if (name === 'node -e 0') continue
    rmSync(path.join(work, 'trace.txt'), { force: true })
    node(args, ['--import', tracer])
    const loaded = readFileSync(path.join(work, 'trace.txt'), 'utf8').split('\n')
    const packages = new Set(
      loaded
        .map(
          (f) =>
            f.match(/node_modules\/(?:\.pnpm\/[^/]+\/node_modules\/)?((?:@[^/]+\/)?[^/]+)/)?.[1] ??
            (f.match(/packages\/([^/]+)\/dist/)?.[1] &&
              `@patch-backup/${f.match(/packages\/([^/]+)\/dist/)[1]}`),
        )
        .filter(Boolean),
    )
    console.log(`${name}: ${[...packages].sort().join(', ')}`)
  }
}
rmSync(work, { recursive: true, force: true })
