// Backup and restore throughput of the whole S3 stack next to the cacache stack, through the
// service, measured in one run on the same files: 200 x 4 KiB and 10 x 1 MiB.
//
// - cacache: `openPatchBackups` from @patch-backup/cli (cacache store + JSON manifests, a temp dir)
// - s3: `openS3Repository` from @patch-backup/store-s3 (bytes and manifests in a bucket), against
//   s3rver on 127.0.0.1 in a process of its own, so it does not share the client's event loop.
//
// Each round makes a fresh root (and bucket prefix), backs the files up with `createBackups`
// (one batch) and again with `createBackup` one file at a time (a second patch), deletes the
// files and restores them with `restoreAllBackups`. The two stacks take turns, in a rotated order.
// Figures are the median of the rounds; the S3 column also gives the requests the client sent
// per file. s3rver is a local Node server: this measures our request count and overhead per
// file, not a network.
//
//   pnpm turbo run build --filter=@patch-backup/store-s3... --filter=@patch-backup/cli...
//   node bench/s3-throughput.mjs [--rounds=3]
import { fork } from 'node:child_process'
import { randomBytes, randomUUID } from 'node:crypto'
import { mkdir, mkdtemp, rm, unlink, writeFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

const BUCKET = 'bench'
const KIB = 1024
const MIB = 1024 * KIB
const rounds = Number(
  process.argv.find((a) => a.startsWith('--rounds='))?.slice('--rounds='.length) ?? 5,
)
// store-s3, s3rver and the SDK are not dependencies of the bench package: take them from where
// the workspace installed them for store-s3.
const fromStoreS3 = createRequire(new URL('../packages/store-s3/package.json', import.meta.url))

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

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]

async function timed(fn) {
  const started = performance.now()
  await fn()
  return (performance.now() - started) / 1000
}

async function main() {
  const { openPatchBackups } = await import('@patch-backup/cli')
  const { createPatchBackups } = await import(
    pathToFileURL(fromStoreS3.resolve('@patch-backup/core')).href
  )
  const { createS3ClientFromEnv, openS3Repository } = await import(
    new URL('../packages/store-s3/dist/index.js', import.meta.url).href
  )
  const work = await mkdtemp(join(tmpdir(), 'pb-s3-throughput-'))
  await mkdir(join(work, 's3rver'))
  const server = await startServer(join(work, 's3rver'))
  try {
    const workloads = [
      { name: '200 x 4 KiB', count: 200, size: 4 * KIB },
      { name: '10 x 1 MiB', count: 10, size: MIB },
    ]
    for (const w of workloads) {
      // The same bytes for every round and stack, kept aside and copied into each project.
      w.contents = Array.from({ length: w.count }, () => randomBytes(w.size))
      w.files = w.contents.map((_, i) => `node_modules/pkg/f${i}.bin`)
    }

    const stacks = {
      cacache: async (root, project) => ({
        backups: openPatchBackups({ dir: root, cwd: project }),
        requests: () => 0,
        close: async () => {},
      }),
      s3: async (_root, project) => {
        const client = createS3ClientFromEnv({
          endpoint: server.endpoint,
          env: {},
          clientConfig: { credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } },
        })
        let sent = 0
        client.middlewareStack.add(
          (next) => (args) => {
            sent++
            return next(args)
          },
          { step: 'finalizeRequest', name: 'countRequests' },
        )
        const repository = openS3Repository({ client, bucket: BUCKET, prefix: randomUUID() })
        return {
          backups: createPatchBackups({ ...repository, cwd: project }),
          requests: () => sent,
          close: async () => client.destroy(),
        }
      },
    }

    const results = {}
    for (const w of workloads) {
      for (const name of Object.keys(stacks)) {
        results[`${w.name}|${name}`] = { batch: [], oneByOne: [], restore: [], requests: {} }
      }
    }
    for (let round = 0; round < rounds; round++) {
      for (const w of workloads) {
        const order = Object.keys(stacks)
        if (round % 2 === 1) order.reverse()
        for (const name of order) {
          const root = join(work, `${name}-${randomUUID()}`)
          const project = join(root, 'project')
          await mkdir(join(project, 'node_modules', 'pkg'), { recursive: true })
          for (let i = 0; i < w.count; i++) {
            await writeFile(join(project, w.files[i]), w.contents[i])
          }
          const stack = await stacks[name](join(root, 'store'), project)
          const r = results[`${w.name}|${name}`]
          const counted = async (step, fn) => {
            const before = stack.requests()
            const seconds = await timed(fn)
            r.requests[step] = (stack.requests() - before) / w.count
            return seconds
          }
          r.batch.push(
            await counted('batch', async () => {
              const made = await stack.backups.createBackups('batch', w.files)
              if (made.failed.length > 0) throw new Error(`${name}: ${made.errors[0]?.message}`)
            }),
          )
          r.oneByOne.push(
            await counted('oneByOne', async () => {
              for (const file of w.files) await stack.backups.createBackup('one-by-one', file)
            }),
          )
          for (const file of w.files) await unlink(join(project, file))
          r.restore.push(
            await counted('restore', async () => {
              const restored = await stack.backups.restoreAllBackups('batch')
              if (restored.restored.length !== w.count) {
                throw new Error(`${name}: ${JSON.stringify(restored.errors[0])}`)
              }
            }),
          )
          await stack.close()
          await rm(root, { recursive: true, force: true })
        }
      }
    }

    const rows = []
    const steps = [
      ['batch', 'backup, one createBackups'],
      ['oneByOne', 'backup, createBackup each'],
      ['restore', 'restoreAllBackups'],
    ]
    for (const w of workloads) {
      for (const [step, label] of steps) {
        const mbps = (name) => (w.count * w.size) / 1e6 / median(results[`${w.name}|${name}`][step])
        const perSecond = (name) => w.count / median(results[`${w.name}|${name}`][step])
        const unit = w.size < MIB ? 'files/s' : 'MB/s'
        const rate = unit === 'files/s' ? perSecond : mbps
        rows.push([
          w.name,
          label,
          `${rate('cacache').toFixed(1)} ${unit}`,
          `${rate('s3').toFixed(1)} ${unit}`,
          `${(rate('s3') / rate('cacache')).toFixed(2)}x`,
          results[`${w.name}|s3`].requests[step].toFixed(1),
        ])
      }
    }
    const header = ['files', 'operation', 'cacache', 's3', 's3 / cacache', 'S3 requests per file']
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)))
    const line = (cells) => `| ${cells.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`
    console.log(`Node ${process.version}, median of ${rounds} rounds, s3rver on 127.0.0.1\n`)
    console.log(line(header))
    console.log(line(widths.map((width) => '-'.repeat(width))))
    for (const row of rows) console.log(line(row))
  } finally {
    server.stop()
    await rm(work, { recursive: true, force: true })
  }
}

if (process.argv[2] === '--server') {
  // Child: the S3 server.
  const S3rver = fromStoreS3('s3rver')
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
