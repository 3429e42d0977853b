// Storage policies benchmark: compression ratio on a real node_modules sample and the throughput
// cost of each decorator relative to the plain cacache store, measured in one run.
//
//   pnpm build --filter=@patch-backup/store-cacache... && node packages/store-cacache/bench-policies.mjs
//
// Options (env): BENCH_FILES (default 2000), BENCH_ROUNDS (default 3, best kept), BENCH_SAMPLE_DIR
// (default <repo>/node_modules/.pnpm), BENCH_BIG_MIB (default 64; 0 skips the large-file rows).
import { createReadStream } from 'node:fs'
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import {
  generateKey,
  isCompressionSupported,
  withCompression,
  withEncryption,
} from '@patch-backup/core'
import { createCacacheStore } from '@patch-backup/store-cacache'

const here = path.dirname(fileURLToPath(import.meta.url))
const sampleDir = process.env.BENCH_SAMPLE_DIR ?? path.resolve(here, '../../node_modules/.pnpm')
const fileCount = Number(process.env.BENCH_FILES ?? 2000)
const rounds = Number(process.env.BENCH_ROUNDS ?? 3)
const bigMiB = Number(process.env.BENCH_BIG_MIB ?? 64)
const CONCURRENCY = 8
const MB = 1e6

/** The first `count` .js files under `dir`, in sorted walk order (deterministic across runs). */
async function sample(dir, count) {
  const found = []
  async function walk(current) {
    if (found.length >= count) return
    const entries = (await readdir(current, { withFileTypes: true })).sort((a, b) =>
      a.name < b.name ? -1 : a.name > b.name ? 1 : 0,
    )
    for (const entry of entries) {
      if (found.length >= count) return
      const full = path.join(current, entry.name)
      if (entry.isDirectory()) await walk(full)
      else if (entry.isFile() && entry.name.endsWith('.js')) found.push(full)
    }
  }
  await walk(dir)
  return found
}

async function pool(items, fn) {
  let next = 0
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < items.length) {
        const i = next++
        await fn(items[i], i)
      }
    }),
  )
}

async function drain(stream) {
  let bytes = 0
  for await (const chunk of stream) bytes += chunk.length
  return bytes
}

async function diskBytes(dir) {
  let total = 0
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile())
      total += (await stat(path.join(entry.parentPath ?? entry.path, entry.name))).size
  }
  return total
}

const key = generateKey()
// zstd rows only where zlib has zstd (Node 22.15+): run this on Node 22 or 24 to see them.
const zstd = isCompressionSupported('zstd')
const configs = [
  ['plain cacache', (s) => s],
  ['gzip (level 6)', (s) => withCompression(s, { algorithm: 'gzip' })],
  ['gzip level 1', (s) => withCompression(s, { algorithm: 'gzip', level: 1 })],
  ['brotli (level 5, default)', (s) => withCompression(s, { algorithm: 'brotli' })],
  ...(zstd
    ? [
        ['zstd (level 3)', (s) => withCompression(s, { algorithm: 'zstd' })],
        ['zstd level 9', (s) => withCompression(s, { algorithm: 'zstd', level: 9 })],
      ]
    : []),
  ['AES-256-GCM', (s) => withEncryption(s, { key })],
  ['gzip + AES-256-GCM', (s) => withCompression(withEncryption(s, { key }), { algorithm: 'gzip' })],
  [
    'brotli + AES-256-GCM',
    (s) => withCompression(withEncryption(s, { key }), { algorithm: 'brotli' }),
  ],
  ...(zstd
    ? [
        [
          'zstd + AES-256-GCM',
          (s) => withCompression(withEncryption(s, { key }), { algorithm: 'zstd' }),
        ],
      ]
    : []),
]

/** Puts every file (read as a stream), then opens and reads every one back; best of `rounds`. */
async function measure(files, decorate) {
  let best
  for (let round = 0; round < rounds; round++) {
    const root = await mkdtemp(path.join(os.tmpdir(), 'pb-bench-policies-'))
    try {
      const cache = path.join(root, '_cacache')
      const store = decorate(createCacacheStore({ path: cache }))
      const results = new Array(files.length)
      let started = performance.now()
      await pool(files, async (file, i) => {
        results[i] = await store.put(`bench:${i}`, createReadStream(file))
      })
      const putMs = performance.now() - started
      started = performance.now()
      await pool(files, async (_file, i) => {
        await drain(await store.open(`bench:${i}`, results[i].integrity))
      })
      const openMs = performance.now() - started
      const original = results.reduce((sum, r) => sum + r.size, 0)
      const stored = await diskBytes(path.join(cache, 'content-v2'))
      const run = { putMs, openMs, original, stored }
      if (!best || putMs + openMs < best.putMs + best.openMs) best = run
    } finally {
      await rm(root, { recursive: true, force: true })
    }
  }
  return best
}

function table(title, rows, base) {
  const lines = [
    `### ${title}`,
    '',
    '| store | stored / original | backup MB/s | restore MB/s | backup time vs plain | restore time vs plain |',
    '| --- | ---: | ---: | ---: | ---: | ---: |',
  ]
  for (const [name, r] of rows) {
    lines.push(
      `| ${name} | ${((100 * r.stored) / r.original).toFixed(1)}% | ${(r.original / MB / (r.putMs / 1000)).toFixed(1)} | ${(r.original / MB / (r.openMs / 1000)).toFixed(1)} | ${(r.putMs / base.putMs).toFixed(2)}× | ${(r.openMs / base.openMs).toFixed(2)}× |`,
    )
  }
  return lines.join('\n')
}

const files = await sample(sampleDir, fileCount)
if (files.length === 0) throw new Error(`No .js files under ${sampleDir}`)
const sizes = await Promise.all(files.map((f) => stat(f).then((s) => s.size)))
const sampleBytes = sizes.reduce((a, b) => a + b, 0)
console.log(
  `Node ${process.versions.node}, ${os.cpus().length} CPUs, best of ${rounds}, ${CONCURRENCY} at a time.${zstd ? '' : ' No zstd rows: this Node has no zstd in zlib (22.15+ has).'}`,
)
console.log(
  `Sample: the first ${files.length} .js files under ${path.relative(process.cwd(), sampleDir) || sampleDir} (${(sampleBytes / MB).toFixed(1)} MB, mean ${Math.round(sampleBytes / files.length)} bytes). Stored size is what content-v2 holds on disk.\n`,
)

const small = []
for (const [name, decorate] of configs) small.push([name, await measure(files, decorate)])
console.log(table(`${files.length} node_modules .js files`, small, small[0][1]))

if (bigMiB > 0) {
  // One large file made of the sample's bytes, repeated: the per-byte cost without per-file overhead.
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pb-bench-big-'))
  try {
    const joined = Buffer.concat(await Promise.all(files.map((f) => readFile(f))))
    const big = path.join(dir, 'big.js')
    const target = bigMiB * 1024 * 1024
    const parts = []
    for (let n = 0; n < target; n += joined.length) parts.push(joined.subarray(0, target - n))
    await writeFile(big, Buffer.concat(parts))
    const large = []
    for (const [name, decorate] of configs) large.push([name, await measure([big], decorate)])
    console.log(`\n${table(`one ${bigMiB} MiB file of the same bytes`, large, large[0][1])}`)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}
