// Child process for the big-file scenario: one contender backs up one file and restores it, in a
// process of its own so that its peak RSS (maxRSS) is its own. Prints one JSON line.
//   node bench/big-file-child.mjs <floor|naive|patch-backup> <work dir> <project-relative file>
import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import path from 'node:path'
import { pipeline } from 'node:stream/promises'
import { openContender } from './lib/contenders.mjs'
import { time } from './lib/measure.mjs'

const [name, work, file] = process.argv.slice(2)
const project = path.join(work, 'project')
const contender = openContender(name, path.join(work, `store-${name}`), project)
const target = path.join(project, file)

const hashOf = async () => {
  const hash = createHash('sha256')
  await pipeline(createReadStream(target), hash)
  return hash.digest('hex')
}
const before = await hashOf()
const backup = await time(() => contender.backupEach('big-file', [file]))
await writeFile(target, 'patched\n')
const restore = await time(() => contender.restoreAll('big-file'))
const identical = (await hashOf()) === before
process.stdout.write(
  `${JSON.stringify({
    name,
    backupMs: backup.ms,
    restoreMs: restore.ms,
    identical,
    maxRssBytes: process.resourceUsage().maxRSS * 1024,
  })}\n`,
)
