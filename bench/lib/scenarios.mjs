// The scenarios. Each returns { rows, facts }: rows are table lines with a median time per
// contender (ms), facts are extra numbers the targets read (peak RSS, bytes freed, ...).
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { copyFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { runNode } from '@patch-backup/conformance'
import { CONTENDERS, naive, openContender, patchBackup } from './contenders.mjs'
import { makeBigFile, makeFiles, removeDir, workDir } from './fixtures.mjs'
import { interleaved, median, Samples, time } from './measure.mjs'
import pMap from './p-map.mjs'

const here = path.dirname(fileURLToPath(import.meta.url))
const repo = path.resolve(here, '..', '..')

function rowsOf(samples, unitCount) {
  return Object.entries(samples.medians()).map(([label, times]) => ({ label, times, unitCount }))
}

/** Backup one by one, batch backup, restore all, list, cleanup: `count` files of `size` bytes. */
export async function manyFiles({ label, count, size, rounds, log }) {
  const work = await workDir('files')
  try {
    const project = path.join(work, 'project')
    const files = await makeFiles(project, count, size)
    const samples = new Samples()
    const row = (op) => `${label}: ${op}`
    const delays = []
    await interleaved(CONTENDERS, rounds, async (name, round) => {
      const root = path.join(work, `${name}-${round}`)
      const c = openContender(name, root, project)
      // Every timed segment starts with the disk flushed: otherwise the writeback of one segment
      // lands in the next, and the floor alone swings 3x.
      const timed = async (fn) => {
        flush()
        return time(fn)
      }
      const loop = name === 'patch-backup' ? monitorEventLoopDelay({ resolution: 1 }) : undefined
      loop?.enable()
      samples.add(
        row('backup one by one'),
        name,
        (await timed(() => c.backupEach('each', files))).ms,
      )
      loop?.disable()
      if (loop) delays.push(loop.percentile(99) / 1e6)
      await patchFiles(project, files)
      const restored = await timed(() => c.restoreAll('each'))
      if (restored.value !== count) throw new Error(`${name} restored ${restored.value}/${count}`)
      samples.add(row('restore all'), name, restored.ms)
      if (name !== 'naive') {
        // All or nothing, with undo kept (the floor copies back again; naive has no such restore).
        await patchFiles(project, files)
        const atomic = await timed(() => c.restoreAll('each', { atomic: true }))
        if (atomic.value !== count) throw new Error(`${name} restored ${atomic.value}/${count}`)
        samples.add(row('restore all, all or nothing'), name, atomic.ms)
      }
      const lists = 20
      const listed = await timed(async () => {
        for (let i = 0; i < lists; i++) await c.list('each')
      })
      samples.add(row('list'), name, listed.ms / lists)
      samples.add(row('cleanup'), name, (await timed(() => c.cleanup('each'))).ms)
      samples.add(row('batch backup'), name, (await timed(() => c.backupBatch('batch', files))).ms)
      await removeDir(root)
      log(`  ${label} round ${round + 1}/${rounds}: ${name} done`)
    })
    return { rows: rowsOf(samples, count), facts: { eventLoopP99Ms: Math.max(...delays) } }
  } finally {
    await removeDir(work)
  }
}

/** Writes every dirty page back (`sync`), so a timed segment does not pay for the one before. */
function flush() {
  spawnSync('sync')
}

/** What a patcher does between backup and restore: rewrite the files (not timed). */
async function patchFiles(project, files) {
  await pMap(files, (f, i) => writeFile(path.join(project, f), `// patched ${i}\n`), {
    concurrency: 8,
  })
}

/** Runs a bench child script to its end; its last stdout line is its JSON report. */
async function runChild(script, args) {
  const { code, stdout, stderr } = await runNode(script, args)
  if (code !== 0) throw new Error(`child ${script} ${args.join(' ')} exited ${code}: ${stderr}`)
  return JSON.parse(stdout.trim().split('\n').pop())
}

/** One big file, backed up and restored by each contender in a child process of its own. */
export async function bigFile({ bytes, rounds, contenders = CONTENDERS, log }) {
  const work = await workDir('big')
  try {
    const file = 'node_modules/big/blob.bin'
    await makeBigFile(path.join(work, 'project', file), bytes)
    const samples = new Samples()
    const rss = {}
    let identical = true
    const label = `1 file of ${Math.round(bytes / 1024 / 1024)} MiB`
    await interleaved(contenders, rounds, async (name, round) => {
      const report = await runChild(path.join(here, '..', 'big-file-child.mjs'), [name, work, file])
      identical &&= report.identical
      samples.add(`${label}: backup`, name, report.backupMs)
      samples.add(`${label}: restore`, name, report.restoreMs)
      rss[name] = Math.max(rss[name] ?? 0, report.maxRssBytes)
      await removeDir(path.join(work, `store-${name}`))
      log(`  big file round ${round + 1}/${rounds}: ${name} done`)
    })
    return { rows: rowsOf(samples, 1), facts: { bigFileBytes: bytes, peakRss: rss, identical } }
  } finally {
    await removeDir(work)
  }
}

/** A store holding `patches` patches of one small file each, written through the public API. */
async function seededStore(work, name, patches) {
  const root = path.join(work, name, 'store')
  const project = path.join(work, name, 'project')
  const files = await makeFiles(project, patches, 256, 'seed')
  const pb = patchBackup(root, project)
  const seeded = await time(() =>
    pMap(files, (file, i) => pb.backups.createBackups(`seed-${i}`, [file]), { concurrency: 8 }),
  )
  return { root, project, files, pb, naive: naive(root, project), seedMs: seeded.ms }
}

function contentFile(root, integrity) {
  const hex = Buffer.from(integrity.slice('sha256-'.length), 'base64').toString('hex')
  return path.join(
    root,
    '_cacache',
    'content-v2',
    'sha256',
    hex.slice(0, 2),
    hex.slice(2, 4),
    hex.slice(4),
  )
}

/**
 * getPatchMetadata / hasBackup, and cleanupBackups of one patch, in a store with `small` other
 * patches and in one with `large`: the same calls should cost about the same.
 */
export async function scaling({ small, large, lookups, rounds, log }) {
  const work = await workDir('scale')
  try {
    const stores = {}
    for (const [tag, n] of [
      ['small', small],
      ['large', large],
    ]) {
      stores[tag] = await seededStore(work, tag, n)
      log(`  seeded ${n} patches in ${(stores[tag].seedMs / 1000).toFixed(1)} s`)
    }
    const samples = new Samples()
    const facts = { freed: true, sharedKept: true, seedMs: {} }
    for (const tag of ['small', 'large'])
      facts.seedMs[stores[tag].files.length] = stores[tag].seedMs
    const n = (tag) => (tag === 'small' ? small : large)

    // Lookups: the same random patches, the same file, every call awaited in turn.
    for (let r = 0; r < rounds; r++) {
      for (const tag of r % 2 ? ['large', 'small'] : ['small', 'large']) {
        const s = stores[tag]
        const picks = Array.from({ length: lookups }, (_, i) => (i * 7919 + r) % s.files.length)
        for (const who of ['naive', 'patch-backup']) {
          const c = who === 'naive' ? s.naive : s.pb
          const meta = await time(async () => {
            for (const i of picks)
              if (!(await c.getPatchMetadata(`seed-${i}`))) throw new Error('lost')
          })
          samples.add(`getPatchMetadata, ${n(tag)} patches`, who, meta.ms / lookups)
          const has = await time(async () => {
            for (const i of picks)
              if (!(await c.hasBackup(`seed-${i}`, s.files[i]))) throw new Error('lost')
          })
          samples.add(`hasBackup, ${n(tag)} patches`, who, has.ms / lookups)
        }
      }
    }

    // Cleanup of one patch (10 files of its own + 1 shared with a seeded patch).
    for (let r = 0; r < rounds; r++) {
      for (const tag of r % 2 ? ['large', 'small'] : ['small', 'large']) {
        const s = stores[tag]
        for (const who of ['floor', 'naive', 'patch-backup']) {
          const victim = `victim-${who}-${r}`
          const own = await makeFiles(s.project, 10, 4096, `victims/${victim}`)
          if (who === 'floor') {
            const dir = path.join(work, tag, 'floor', victim)
            await mkdir(dir, { recursive: true })
            for (const [i, f] of own.entries())
              await copyFile(path.join(s.project, f), path.join(dir, String(i)))
            samples.add(
              `cleanupBackups, ${n(tag)} other patches`,
              who,
              (await time(() => rm(dir, { recursive: true }))).ms,
            )
            continue
          }
          if (who === 'naive') {
            // The naive cleanup frees without looking: give it no shared file to destroy.
            await s.naive.backupEach(victim, own)
            samples.add(
              `cleanupBackups, ${n(tag)} other patches`,
              who,
              (await time(() => s.naive.cleanup(victim))).ms,
            )
            continue
          }
          const shared = `victims/${victim}/shared.js`
          await copyFile(path.join(s.project, s.files[0]), path.join(s.project, shared))
          const made = await s.pb.backups.createBackups(victim, [...own, shared])
          if (made.failed.length) throw new Error(JSON.stringify(made.errors))
          samples.add(
            `cleanupBackups, ${n(tag)} other patches`,
            who,
            (await time(() => s.pb.cleanup(victim))).ms,
          )
          for (const f of own)
            facts.freed &&= !existsSync(contentFile(s.root, made.files[f].integrity))
          facts.sharedKept &&= existsSync(contentFile(s.root, made.files[shared].integrity))
        }
      }
      log(`  scaling round ${r + 1}/${rounds} done`)
    }
    return { rows: rowsOf(samples, 1), facts }
  } finally {
    await removeDir(work)
  }
}

/** `patch-backup --version` from the bin users run vs `node -e 0`, spawned in turn. */
export async function coldStart({ rounds }) {
  const bin = path.join(repo, 'packages', 'cli', 'bin', 'patch-backup.js')
  const { version } = JSON.parse(
    await readFile(path.join(repo, 'packages', 'cli', 'package.json'), 'utf8'),
  )
  const spawnMs = (args) => {
    const start = performance.now()
    const out = spawnSync(process.execPath, args, { encoding: 'utf8' })
    const ms = performance.now() - start
    if (out.status !== 0) throw new Error(`${args.join(' ')} exited ${out.status}: ${out.stderr}`)
    return { ms, stdout: out.stdout }
  }
  const node = []
  const cli = []
  spawnMs(['-e', '0']) // warm the binary into the page cache
  for (let r = 0; r < rounds; r++) {
    node.push(spawnMs(['-e', '0']).ms)
    const run = spawnMs([bin, '--version'])
    if (run.stdout.trim() !== version)
      throw new Error(`--version printed ${JSON.stringify(run.stdout)}`)
    cli.push(run.ms)
  }
  return {
    rows: [
      { label: 'node -e 0', times: { floor: median(node) } },
      { label: 'patch-backup --version', times: { 'patch-backup': median(cli) } },
    ],
    facts: { nodeMs: median(node), cliMs: median(cli) },
  }
}
