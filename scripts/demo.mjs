// The tool as a user meets it: the built `patch-backup` command (packages/cli's bin, spawned as a
// process) on a sample project in a temp dir. Backs up three files, patches them, records the
// patch, asks for status, restores, undoes the restore; after each step it checks the files on
// disk byte for byte and says what the step did. Exits 1 if a command or a check fails.
import { spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import os from 'node:os'
import path from 'node:path'

// The bin exactly as package.json names it, the file npm links when the CLI is installed.
const pkgJson = createRequire(import.meta.url).resolve('@patch-backup/cli/package.json')
const { bin } = JSON.parse(await readFile(pkgJson, 'utf8'))
const binFile = path.join(path.dirname(pkgJson), bin['patch-backup'])

const work = await mkdtemp(path.join(os.tmpdir(), 'patch-backup-demo-'))
const project = path.join(work, 'project')
const store = path.join(work, 'store')
const uuid = 'demo-patch-001'

const original = {
  'node_modules/lodash/package.json': '{ "name": "lodash", "version": "4.17.20" }\n',
  'node_modules/lodash/template.js': 'module.exports = function template(s) { return eval(s) }\n',
  'node_modules/minimist/index.js': 'module.exports = (args) => Object.assign({}, ...args)\n',
}
// What the "patch" writes: a version bump and a guard. minimist is backed up but left alone.
const patched = {
  ...original,
  'node_modules/lodash/package.json': '{ "name": "lodash", "version": "4.17.21" }\n',
  'node_modules/lodash/template.js':
    'module.exports = function template(s) {\n  if (/constructor/.test(s)) throw new Error("unsafe")\n  return eval(s)\n}\n',
}
const files = Object.keys(original)

let failed = false
const sha = (bytes) => createHash('sha256').update(bytes).digest('hex').slice(0, 12)

/** Runs `patch-backup <args>` in the project against the demo's store and prints it all. */
function cli(...args) {
  console.log(`$ patch-backup ${args.join(' ')}`)
  const env = { ...process.env, PATCH_BACKUP_DIR: store }
  for (const name of ['NODE_OPTIONS', 'FORCE_COLOR']) delete env[name]
  const r = spawnSync(process.execPath, [binFile, ...args], { cwd: project, env, encoding: 'utf8' })
  const out = `${r.stdout}${r.stderr}`.trimEnd()
  if (out) console.log(out.replace(/^/gm, '  '))
  if (r.status !== 0) {
    console.log(`  (exit ${r.status ?? r.signal})`)
    failed = true
  }
}

/** Checks that every file holds `expected`'s bytes and says so. */
async function check(expected, label) {
  const differ = []
  for (const file of files) {
    const now = await readFile(path.join(project, file))
    if (!now.equals(Buffer.from(expected[file]))) differ.push(`${file} (sha256 ${sha(now)}…)`)
  }
  if (differ.length) {
    failed = true
    console.log(`  CHECK FAILED: not ${label}: ${differ.join(', ')}`)
  } else console.log(`  check: all ${files.length} files are ${label}, byte for byte`)
}

const step = (n, text) => console.log(`\n${n}. ${text}`)

try {
  for (const [file, content] of Object.entries(original)) {
    await mkdir(path.dirname(path.join(project, file)), { recursive: true })
    await writeFile(path.join(project, file), content)
  }
  console.log(`The built CLI: node ${path.relative(process.cwd(), binFile)}`)
  console.log(`Sample project: ${project}`)
  console.log(`Backup store:   ${store} (PATCH_BACKUP_DIR)`)

  step(1, 'Before the patch: back up the files it will touch.')
  cli('backup', uuid, ...files)

  step(2, 'The patch runs: it bumps lodash to 4.17.21 and guards template.js (minimist untouched).')
  for (const [file, content] of Object.entries(patched))
    if (content !== original[file]) await writeFile(path.join(project, file), content)
  await check(patched, 'as the patch wrote them')

  step(3, 'Record what the patch wrote, so later changes can be told from the patch.')
  cli('record', uuid)

  step(4, 'Status: which files hold the backup, the patch, or something else.')
  cli('status', uuid)

  step(5, 'Restore: put every file back as it was before the patch (all or nothing).')
  cli('restore', uuid)
  await check(original, 'as before the patch')

  step(6, 'Undo: take the restore back; the patched bytes return.')
  cli('undo', uuid)
  await check(patched, 'as the patch wrote them')
  cli('status', uuid)
} finally {
  await rm(work, { recursive: true, force: true })
}

console.log(
  failed
    ? '\ndemo FAILED (see above)'
    : '\ndemo ok: backup, record, status, restore and undo each did what they said',
)
process.exitCode = failed ? 1 : 0
