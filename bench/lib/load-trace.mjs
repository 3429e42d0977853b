// What a spawned command loads and where its CPU time goes (bench/startup.mjs --trace).
//
// Two kinds of run per command, neither timed for the table:
// - one with `--import` of a small tracer: every ESM module the loader resolves (a resolve hook),
//   every CommonJS module (the require cache) and every node built-in (process.moduleLoadList);
// - `runs` with `--cpu-prof`: each sample goes to the package whose code was running (the
//   innermost frame in a file of ours or of node_modules); a CommonJS module's compile goes to the
//   module being compiled. Samples with no such frame are node's own work: ESM compile, built-ins
//   loaded by an ESM `import`, module resolution, bootstrap, GC.
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const HOOK = `import { appendFileSync } from 'node:fs'
export async function resolve(s, c, next) {
  const r = await next(s, c)
  appendFileSync(process.env.LOAD_TRACE_TO, 'esm ' + r.url + '\\n')
  return r
}`

const TRACER = `import { register, createRequire } from 'node:module'
import { appendFileSync } from 'node:fs'
register('data:text/javascript,' + encodeURIComponent(${JSON.stringify(HOOK)}))
const M = createRequire(import.meta.url)('node:module')
process.on('exit', () => {
  const lines = Object.keys(M._cache).map((f) => 'cjs ' + f)
  for (const m of process.moduleLoadList)
    if (m.startsWith('NativeModule ') && !m.startsWith('NativeModule internal/'))
      lines.push('builtin ' + m.slice(13))
  appendFileSync(process.env.LOAD_TRACE_TO, lines.join('\\n') + '\\n')
})
`

/** `cacache`, `@npmcli/fs`, `@patch-backup/core`; `undefined` for node's own code. */
export function packageOf(file) {
  if (!file || file.startsWith('node:')) return undefined
  const f = file.startsWith('file:') ? fileURLToPath(file) : file
  const dep = f.match(
    /node_modules[\\/](?:\.pnpm[\\/][^\\/]+[\\/]node_modules[\\/])?((?:@[^\\/]+[\\/])?[^\\/]+)/,
  )
  if (dep) return dep[1].replace('\\', '/')
  const own = f.match(/packages[\\/]([^\\/]+)[\\/](?:dist|bin)[\\/]/)
  if (own) return `@patch-backup/${own[1]}`
  return path.basename(f)
}

function fileSize(file) {
  try {
    return statSync(file.startsWith('file:') ? fileURLToPath(file) : file).size
  } catch {
    return 0
  }
}

/**
 * The modules one run of `args` loads: per package its files (ESM and CommonJS) and bytes, and the
 * node built-ins it loads that `baseline` (another trace) did not.
 */
export function loadedModules(args, { cwd, env, work }) {
  const tracer = path.join(work, 'load-tracer.mjs')
  const out = path.join(work, 'load-trace.txt')
  writeFileSync(tracer, TRACER)
  rmSync(out, { force: true })
  const r = spawnSync(process.execPath, ['--import', tracer, ...args], {
    cwd,
    env: { ...env, LOAD_TRACE_TO: out },
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  if (r.status !== 0) throw new Error(`traced run exited ${r.status}: ${r.stderr}`)
  const packages = new Map()
  const builtins = new Set()
  const seen = new Set()
  const lines = readFileSync(out, 'utf8').split('\n')
  const split = (line) => [line.slice(0, line.indexOf(' ')), line.slice(line.indexOf(' ') + 1)]
  // CommonJS first: an ESM import of a CommonJS file passes the resolve hook too.
  const ordered = [
    ...lines.filter((l) => l.startsWith('cjs ')),
    ...lines.filter((l) => l.startsWith('esm ')),
  ]
  for (const line of lines) if (line.startsWith('builtin ')) builtins.add(split(line)[1])
  for (const line of ordered) {
    const [kind, what] = split(line)
    if (what.startsWith('node:') || what.startsWith('data:')) continue
    const file = what.startsWith('file:') ? fileURLToPath(what) : what
    if (file === tracer || seen.has(file)) continue
    seen.add(file)
    const name = packageOf(file)
    const entry = packages.get(name) ?? { esm: 0, cjs: 0, bytes: 0 }
    entry[kind]++
    entry.bytes += fileSize(file)
    packages.set(name, entry)
  }
  return { packages, builtins }
}

const NODE = {
  esmCompile: 'node: compiling ES modules',
  builtins: 'node: compiling its built-in modules (node:* imports, its loader)',
  loader: 'node: resolving and reading modules',
  other: 'node: start-up, I/O and the rest',
  gc: 'node: garbage collection',
  program: 'V8: compiling and other native work',
}

/**
 * Where `runs` CPU profiles of `args` spent their samples: ms (mean per run) by package, and by
 * what node itself was doing when none of our or our dependencies' code was on the stack.
 */
export function timeShares(args, { cwd, env, work, runs = 3 }) {
  const dir = mkdtempSync(path.join(work, 'prof-'))
  for (let i = 0; i < runs; i++) {
    const r = spawnSync(
      process.execPath,
      ['--cpu-prof', '--cpu-prof-interval', '100', '--cpu-prof-dir', dir, ...args()],
      { cwd, env, stdio: ['ignore', 'ignore', 'pipe'] },
    )
    if (r.status !== 0) throw new Error(`profiled run exited ${r.status}: ${r.stderr}`)
  }
  const totals = new Map()
  const files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'))
  for (const f of files) {
    const profile = JSON.parse(readFileSync(path.join(dir, f), 'utf8'))
    const byId = new Map(profile.nodes.map((n) => [n.id, n]))
    const firstPackageBelow = (node) => {
      const queue = [...(node.children ?? [])]
      while (queue.length) {
        const child = byId.get(queue.shift())
        const name = packageOf(child.callFrame.url)
        if (name) return name
        queue.push(...(child.children ?? []))
      }
      return undefined
    }
    const owner = new Map()
    // `ours`: a frame of ours or of a dependency is on the stack, so it owns what node does for it.
    const walk = (id, inherited, ours) => {
      const node = byId.get(id)
      const { functionName: fn, url } = node.callFrame
      let who = inherited
      const pkg = packageOf(url)
      if (pkg) {
        who = pkg
        ours = true
      } else if (fn === 'Module._compile') {
        // A CommonJS module's compile and first run: the module's, not its requirer's.
        who = firstPackageBelow(node) ?? who
        ours = true
      } else if (!ours) {
        if (fn === 'compileSourceTextModule') who = NODE.esmCompile
        else if (fn === 'compileForInternalLoader' && who !== NODE.esmCompile) who = NODE.builtins
        else if (url.startsWith('node:internal/modules/') && who === NODE.other) who = NODE.loader
      }
      if (fn === '(garbage collector)') who = NODE.gc
      if (fn === '(program)') who = NODE.program
      if (fn === '(idle)') who = undefined
      owner.set(id, who)
      for (const child of node.children ?? []) walk(child, who, ours)
    }
    walk(profile.nodes[0].id, NODE.other, false)
    profile.samples.forEach((sample, i) => {
      const who = owner.get(sample)
      if (who) totals.set(who, (totals.get(who) ?? 0) + (profile.timeDeltas[i] ?? 0) / 1000)
    })
  }
  rmSync(dir, { recursive: true, force: true })
  for (const [k, v] of totals) totals.set(k, v / files.length)
  return totals
}

/**
 * A trace of a command: its modules and its CPU time by package. `args()` gives each run's
 * arguments (a backup under a new uuid each time does the same work each time).
 */
export function traceCommand(name, args, options) {
  const work = mkdtempSync(path.join(os.tmpdir(), 'pb-trace-'))
  try {
    const { packages, builtins } = loadedModules(args(), { ...options, work })
    const shares = timeShares(args, { ...options, work })
    return { name, packages, builtins, shares }
  } finally {
    rmSync(work, { recursive: true, force: true })
  }
}

/** Lines for one trace; `baseline` (the --version trace) for the built-ins it adds. */
export function formatTrace({ name, packages, builtins, shares }, baseline) {
  const count = (k) => [...packages.values()].reduce((n, p) => n + p[k], 0)
  const kb = [...packages.values()].reduce((n, p) => n + p.bytes, 0) / 1024
  const added = baseline ? [...builtins].filter((b) => !baseline.builtins.has(b)) : []
  const total = [...shares.values()].reduce((a, b) => a + b, 0)
  const lines = [
    `${name}: ${count('esm')} ES modules and ${count('cjs')} CommonJS files (${kb.toFixed(0)} KiB) in ${packages.size} packages; CPU ${total.toFixed(0)} ms`,
    baseline
      ? `  node built-ins beyond --version's: ${added.length ? added.sort().join(', ') : 'none'}`
      : `  node built-ins: ${builtins.size}`,
  ]
  const rows = [...shares].sort((a, b) => b[1] - a[1])
  for (const [who, ms] of rows) {
    if (ms < 0.05) continue
    const p = packages.get(who)
    const files = p
      ? `${p.esm ? `${p.esm} esm` : ''}${p.esm && p.cjs ? ' + ' : ''}${p.cjs ? `${p.cjs} cjs` : ''}, ${(p.bytes / 1024).toFixed(0)} KiB`
      : ''
    lines.push(
      `  ${ms.toFixed(1).padStart(6)} ms ${((100 * ms) / total).toFixed(0).padStart(3)}%  ${who}${files ? `  (${files})` : ''}`,
    )
  }
  // Packages loaded whose code the sampler never caught.
  const quiet = [...packages.keys()].filter((k) => !shares.has(k))
  if (quiet.length) lines.push(`       <0.1 ms        ${quiet.sort().join(', ')}`)
  return lines
}
