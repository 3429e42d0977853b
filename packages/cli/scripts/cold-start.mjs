// Cold start of `patch-backup --version` against a bare `node -e 0`: 20 runs each, interleaved,
// medians in ms and their ratio. Run after a build: node scripts/cold-start.mjs [runs]
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const bin = fileURLToPath(new URL('../bin/patch-backup.js', import.meta.url))
const runs = Number(process.argv[2] ?? 20)
const store = mkdtempSync(path.join(os.tmpdir(), 'pb-cold-start-'))
const cases = {
  'node -e 0': ['-e', '0'],
  'patch-backup --version': [bin, '--version'],
  'patch-backup list (full stack)': [bin, '--dir', store, 'list'],
}

function time(args) {
  const start = process.hrtime.bigint()
  const result = spawnSync(process.execPath, args, { stdio: 'ignore' })
  if (result.status !== 0) throw new Error(`${args.join(' ')} exited ${result.status}`)
  return Number(process.hrtime.bigint() - start) / 1e6
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b)
  const mid = Math.floor(s.length / 2)
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2
}

const samples = Object.fromEntries(Object.keys(cases).map((name) => [name, []]))
for (const args of Object.values(cases)) time(args) // warm the file cache once
for (let i = 0; i < runs; i++) {
  for (const [name, args] of Object.entries(cases)) samples[name].push(time(args))
}
rmSync(store, { recursive: true, force: true })
const base = median(samples['node -e 0'])
for (const [name, xs] of Object.entries(samples)) {
  const m = median(xs)
  console.log(`${name.padEnd(32)} median ${m.toFixed(1).padStart(6)} ms  x${(m / base).toFixed(2)}`)
}
