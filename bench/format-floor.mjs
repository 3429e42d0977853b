// What the on-disk format itself costs a backup of one file per call (issue 18), measured in one
// run beside the copy loop and patch-backup:
//   node bench/format-floor.mjs [--files=1000] [--rounds=3]
//
// - floor: `fs.copyFile` of each file into a new directory (one new inode per file);
// - format minimum: the least a loop can do and still leave a store `cacache.get` reads and a
//   manifest rewritten by temp + rename at each call, with synchronous calls and nothing else (no
//   lock, no dedup check, no remove protocol, no read-back): read, hash, write a temp, make the
//   two content shard directories, link the temp into place, unlink it, make the two index shard
//   directories, append the index line to a new bucket file, rewrite the manifest. That is four
//   to five new inodes per file where the copy makes one;
// - patch-backup: the module-level `createBackup`, awaited, once per file (the seed's pattern).
//
// Each round uses fresh roots; every timed segment starts after `sync`. Prints each round's times
// and ratios, then the medians of the ratios.
import { spawnSync } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import {
  closeSync,
  constants,
  linkSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  unlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs'
import { copyFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { createBackup } from '@patch-backup/cli'

const flag = (name, fallback) =>
  Number(process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? fallback)
const count = flag('files', 1000)
const rounds = flag('rounds', 3)

const work = mkdtempSync(path.join(os.tmpdir(), 'pb-format-floor-'))
const project = path.join(work, 'project')
const files = []
for (let i = 0; i < count; i++) {
  const file = `node_modules/pkg-${i % 50}/lib/file-${i}.js`
  mkdirSync(path.join(project, path.dirname(file)), { recursive: true })
  writeFileSync(path.join(project, file), randomBytes(4096))
  files.push(file)
}

async function timed(fn) {
  spawnSync('sync')
  const start = performance.now()
  await fn()
  return performance.now() - start
}

function formatMinimum(root) {
  const cache = path.join(root, '_cacache')
  const manifests = path.join(root, '_patches', 'manifests')
  mkdirSync(path.join(cache, 'tmp'), { recursive: true })
  mkdirSync(manifests, { recursive: true })
  const entries = []
  for (const file of files) {
    const bytes = readFileSync(path.join(project, file))
    const hex = createHash('sha256').update(bytes).digest('hex')
    const temp = path.join(cache, 'tmp', `${process.pid}-${hex.slice(0, 16)}`)
    writeFileSync(temp, bytes)
    const content = path.join(cache, 'content-v2', 'sha256', hex.slice(0, 2), hex.slice(2, 4))
    mkdirSync(content, { recursive: true })
    linkSync(temp, path.join(content, hex.slice(4)))
    unlinkSync(temp)
    const key = `socket:patch:backup:each:${file}`
    const bucketHex = createHash('sha256').update(key).digest('hex')
    const index = path.join(cache, 'index-v5', bucketHex.slice(0, 2), bucketHex.slice(2, 4))
    mkdirSync(index, { recursive: true })
    const integrity = `sha256-${Buffer.from(hex, 'hex').toString('base64')}`
    const line = JSON.stringify({ key, integrity, time: Date.now(), size: bytes.length })
    const fd = openSync(
      path.join(index, bucketHex.slice(4)),
      constants.O_WRONLY | constants.O_CREAT | constants.O_APPEND,
    )
    writeSync(fd, `\n${createHash('sha1').update(line).digest('hex')}\t${line}`)
    closeSync(fd)
    entries.push(
      `    ${JSON.stringify(file)}: ${JSON.stringify({ integrity, size: bytes.length })}`,
    )
    const manifestTemp = path.join(manifests, '.each.json.tmp')
    writeFileSync(manifestTemp, `{\n  "files": {\n${entries.join(',\n')}\n  }\n}\n`)
    renameSync(manifestTemp, path.join(manifests, 'each.json'))
  }
}

const median = (values) => values.slice().sort((a, b) => a - b)[Math.floor(values.length / 2)]
const ratios = { minimum: [], pb: [], pbOfMinimum: [] }
const ms = (value) => `${value.toFixed(0)} ms`
console.log(`${count} x 4 KiB, one file per call, node ${process.version}`)
try {
  for (let round = 0; round < rounds; round++) {
    const copies = path.join(work, `floor-${round}`)
    mkdirSync(copies)
    const floor = await timed(async () => {
      for (const [i, file] of files.entries())
        await copyFile(path.join(project, file), path.join(copies, `copy-${i}`))
    })
    const minimum = await timed(() => formatMinimum(path.join(work, `minimum-${round}`)))
    process.env.PATCH_BACKUP_DIR = path.join(work, `patch-backup-${round}`)
    const pb = await timed(async () => {
      for (const file of files) await createBackup('each', path.join(project, file))
    })
    ratios.minimum.push(minimum / floor)
    ratios.pb.push(pb / floor)
    ratios.pbOfMinimum.push(pb / minimum)
    console.log(
      `round ${round + 1}: floor ${ms(floor)}, format minimum ${ms(minimum)} (${(minimum / floor).toFixed(2)}x), patch-backup ${ms(pb)} (${(pb / floor).toFixed(2)}x floor, ${(pb / minimum).toFixed(2)}x format minimum)`,
    )
  }
  console.log(
    `median: format minimum ${median(ratios.minimum).toFixed(2)}x floor, patch-backup ${median(ratios.pb).toFixed(2)}x floor, ${median(ratios.pbOfMinimum).toFixed(2)}x format minimum`,
  )
} finally {
  rmSync(work, { recursive: true, force: true })
}
