// Upload and download throughput of the S3 store (against s3rver on 127.0.0.1, in its own process)
// next to the cacache store on a temp dir, measured in one run on the same files:
// one 64 MiB file, and 200 files of 64 KiB put and opened 8 at a time (the service's default).
// Each figure is the median of RUNS runs, each on a fresh, empty store.
//
//   pnpm build --filter=@patch-backup/store-s3... && node packages/store-s3/bench/throughput.mjs
import { fork } from 'node:child_process'
import { randomBytes, randomUUID } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { fileURLToPath } from 'node:url'

const RUNS = Number(process.env.RUNS ?? 3)
const CONCURRENCY = 8
const BUCKET = 'bench'
const MIB = 1024 * 1024

async function startServer(directory) {
  const child = fork(fileURLToPath(import.meta.url), ['--server', directory], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
  const { port } = await new Promise((resolve, reject) => {
    child.once('message', resolve)
    child.once('exit', (code) => reject(new Error(`s3rver exited with ${code}`)))
  })
  return { endpoint: `http://127.0.0.1:${port}`, stop: () => child.disconnect() }
}

/** Runs `task` over `items`, `limit` at a time. */
async function eachLimited(items, limit, task) {
  let next = 0
  const worker = async () => {
    while (next < items.length) {
      const i = next++
      await task(items[i], i)
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
}

const discard = () =>
  new Writable({
    write(_chunk, _encoding, done) {
      done()
    },
  })

async function timed(fn) {
  const started = performance.now()
  await fn()
  return (performance.now() - started) / 1000
}

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]

/** Puts every file (reading it from disk), then opens and reads every one back (verified). */
async function measure(store, files) {
  const stored = []
  const up = await timed(() =>
    eachLimited(files, CONCURRENCY, async (file, i) => {
      stored[i] = await store.put(`socket:patch:backup:bench:${i}`, createReadStream(file))
    }),
  )
  const down = await timed(() =>
    eachLimited(files, CONCURRENCY, async (_file, i) => {
      const stream = await store.open(`socket:patch:backup:bench:${i}`, stored[i].integrity)
      if (!stream) throw new Error(`lost ${i}`)
      await pipeline(stream, discard())
    }),
  )
  return { up, down }
}

async function main() {
  const { createCacacheStore } = await import('@patch-backup/store-cacache')
  const { createS3StoreFromEnv } = await import('@patch-backup/store-s3')
  const work = await mkdtemp(join(tmpdir(), 'pb-s3-bench-'))
  await mkdir(join(work, 's3rver'))
  const server = await startServer(join(work, 's3rver'))
  try {
    const big = join(work, 'big.bin')
    await writeFile(big, randomBytes(64 * MIB))
    const smallDir = join(work, 'small')
    await mkdir(smallDir)
    const small = []
    for (let i = 0; i < 200; i++) {
      small.push(join(smallDir, `${i}.bin`))
      await writeFile(small[i], randomBytes(64 * 1024))
    }
    const workloads = [
      { name: '1 x 64 MiB', files: [big], bytes: 64 * MIB },
      { name: '200 x 64 KiB', files: small, bytes: 200 * 64 * 1024 },
    ]
    const stores = {
      cacache: async () => {
        const path = join(work, `cacache-${randomUUID()}`)
        return { store: createCacacheStore({ path }), done: () => rm(path, { recursive: true }) }
      },
      s3: async () => {
        const store = createS3StoreFromEnv({
          bucket: BUCKET,
          prefix: randomUUID(),
          endpoint: server.endpoint,
          env: {},
          clientConfig: { credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } },
        })
        return { store, done: async () => store.client.destroy() }
      },
    }

    const rows = []
    for (const workload of workloads) {
      const results = {}
      for (const [name, open] of Object.entries(stores)) {
        const ups = []
        const downs = []
        for (let run = 0; run < RUNS; run++) {
          const { store, done } = await open()
          const { up, down } = await measure(store, workload.files)
          ups.push(up)
          downs.push(down)
          await done()
        }
        results[name] = { up: median(ups), down: median(downs) }
      }
      for (const direction of ['up', 'down']) {
        const rate = (name) => workload.bytes / 1e6 / results[name][direction]
        rows.push([
          workload.name,
          direction === 'up' ? 'upload (put)' : 'download (open + read)',
          rate('cacache').toFixed(1),
          rate('s3').toFixed(1),
          `${(rate('s3') / rate('cacache')).toFixed(2)}x`,
        ])
      }
    }
    const header = ['workload', 'direction', 'cacache MB/s', 's3 MB/s', 's3 / cacache']
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)))
    const line = (cells) => `| ${cells.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`
    console.log(
      `Node ${process.version}, median of ${RUNS} runs, ${CONCURRENCY} files at a time, s3rver on 127.0.0.1\n`,
    )
    console.log(line(header))
    console.log(line(widths.map((w) => '-'.repeat(w))))
    for (const row of rows) console.log(line(row))
  } finally {
    server.stop()
    await rm(work, { recursive: true, force: true })
  }
}

if (process.argv[2] === '--server') {
  // Child: the S3 server, so it does not share the client's event loop.
  const { default: S3rver } = await import('s3rver')
  const server = new S3rver({
    address: '127.0.0.1',
    port: 0,
    silent: true,
    directory: process.argv[3],
    configureBuckets: [{ name: BUCKET }],
  })
  const { port } = await server.run()
  server.logger.silent = true
  process.send?.({ port })
  process.on('disconnect', () => process.exit(0))
} else {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true'
  await main()
}
