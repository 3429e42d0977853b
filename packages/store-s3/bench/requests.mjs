// Requests per operation of a whole repository in a bucket (openS3Repository: bytes and manifests),
// against s3rver on 127.0.0.1 in this process, with 1, 100 and 10,000 patches already in the
// bucket. Requests are counted as the server receives them, by method.
//
//   pnpm turbo run build --filter=@patch-backup/store-s3... && node packages/store-s3/bench/requests.mjs
import { randomBytes } from 'node:crypto'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3'
import { createPatchBackups } from '@patch-backup/core'
import S3rver from 's3rver'
import { openS3Repository } from '../dist/index.js'

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true'
const SIZES = (process.env.PATCHES ?? '1,100,10000').split(',').map(Number)
const BUCKET = 'bench'

const work = await mkdtemp(join(tmpdir(), 'pb-s3-requests-'))
const server = new S3rver({
  address: '127.0.0.1',
  port: 0,
  silent: true,
  directory: join(work, 's3'),
  configureBuckets: [{ name: BUCKET }],
})
const { port } = await server.run()
server.logger.silent = true
const client = new S3Client({
  endpoint: `http://127.0.0.1:${port}`,
  region: 'us-east-1',
  forcePathStyle: true,
  credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
  requestChecksumCalculation: 'WHEN_REQUIRED',
  responseChecksumValidation: 'WHEN_REQUIRED',
})

let counts = {}
server.httpServer.on('request', (request) => {
  const kind =
    request.method === 'GET' && /^\/[^/?]+\/?(\?|$)/.test(request.url) ? 'LIST' : request.method
  const copy = request.method === 'PUT' && request.headers['x-amz-copy-source'] ? 'COPY' : kind
  counts[copy] = (counts[copy] ?? 0) + 1
})
async function counted(fn) {
  counts = {}
  const started = performance.now()
  await fn()
  const ms = performance.now() - started
  const total = Object.values(counts).reduce((a, b) => a + b, 0)
  const by = Object.entries(counts)
    .sort()
    .map(([k, v]) => `${v} ${k}`)
    .join(', ')
  return { total, by, ms: Math.round(ms) }
}

/** `n` patches of one file each, written straight as manifest objects (one PUT each). */
async function populate(prefix, n) {
  let next = 0
  const stamp = Date.now() - 60_000
  const worker = async () => {
    while (next < n) {
      const i = next++
      const uuid = `seed-${String(i).padStart(5, '0')}`
      const delta = {
        format: 'patch-backup/manifest-delta@1',
        uuid,
        at: new Date(stamp).toISOString(),
        init: { uuid, patchedAt: new Date(stamp).toISOString() },
        ops: [
          {
            op: 'add',
            path: 'node_modules/x/index.js',
            entry: {
              integrity: `sha256-${randomBytes(32).toString('base64')}`,
              size: 10,
              backedUpAt: new Date(stamp).toISOString(),
              originalPath: 'node_modules/x/index.js',
            },
          },
        ],
      }
      const name = `${stamp}-${randomBytes(8).toString('hex')}.json`
      await client.send(
        new PutObjectCommand({
          Bucket: BUCKET,
          Key: `${prefix}/manifests/${uuid}/${name}`,
          Body: JSON.stringify(delta),
        }),
      )
    }
  }
  await Promise.all(Array.from({ length: 32 }, worker))
}

const rows = []
for (const n of SIZES) {
  const prefix = `p${n}`
  const project = join(work, `project-${n}`)
  await mkdir(join(project, 'node_modules/lodash'), { recursive: true })
  await writeFile(join(project, 'node_modules/lodash/a.js'), randomBytes(2048))
  await writeFile(join(project, 'node_modules/lodash/b.js'), randomBytes(2048))
  const seedStarted = performance.now()
  await populate(prefix, n - 1)
  const seeded = Math.round((performance.now() - seedStarted) / 1000)
  // A fresh process's view: a new client cache for each measured step.
  const open = () =>
    createPatchBackups({ ...openS3Repository({ client, bucket: BUCKET, prefix }), cwd: project })
  const first = await counted(() => open().createBackup('bench', 'node_modules/lodash/a.js'))
  const second = await counted(() => open().createBackup('bench', 'node_modules/lodash/b.js'))
  const again = await counted(() => open().createBackup('bench', 'node_modules/lodash/a.js'))
  await writeFile(join(project, 'node_modules/lodash/a.js'), 'patched')
  const restore = await counted(() => open().restoreBackup('bench', 'node_modules/lodash/a.js'))
  const list = await counted(async () => {
    const all = await open().listAllPatches()
    if (all.length !== n) throw new Error(`listed ${all.length} of ${n}`)
  })
  rows.push({ n, seeded, first, second, again, restore, list })
  console.error(`${n} patches done (seeded in ${seeded} s)`)
}

const cell = (r) => `${r.total} (${r.by}), ${r.ms} ms`
console.log('| patches in the bucket | operation | requests (by kind), wall time |')
console.log('|---:|---|---|')
for (const r of rows) {
  console.log(`| ${r.n} | createBackup, new patch | ${cell(r.first)} |`)
  console.log(`| ${r.n} | createBackup, 2nd file of that patch | ${cell(r.second)} |`)
  console.log(`| ${r.n} | createBackup, already backed up | ${cell(r.again)} |`)
  console.log(`| ${r.n} | restoreBackup, one file | ${cell(r.restore)} |`)
  console.log(`| ${r.n} | listAllPatches | ${cell(r.list)} |`)
}
client.destroy()
await server.close()
await rm(work, { recursive: true, force: true })
