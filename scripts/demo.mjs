// A real run on the default adapters (cacache + JSON manifests) in a temp dir:
// back up a sample node_modules tree, patch it, restore it, verify every byte.
import { createHash } from 'node:crypto'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { openPatchBackups } from '@patch-backup/cli'

const sha = (bytes) => createHash('sha256').update(bytes).digest('hex').slice(0, 12)
const work = await mkdtemp(path.join(os.tmpdir(), 'patch-backup-demo-'))
const project = path.join(work, 'project')
const root = path.join(work, 'store')

const files = {
  'node_modules/lodash/package.json': '{ "name": "lodash", "version": "4.17.20" }\n',
  'node_modules/lodash/template.js': 'module.exports = function template(s) { return eval(s) }\n',
  'node_modules/minimist/index.js': 'module.exports = (args) => Object.assign({}, ...args)\n',
}
for (const [file, content] of Object.entries(files)) {
  await mkdir(path.dirname(path.join(project, file)), { recursive: true })
  await writeFile(path.join(project, file), content)
}
console.log(`project: ${project}\nstore:   ${root}\n`)

const backups = openPatchBackups({ dir: root, cwd: project })
const uuid = 'demo-patch-001'
const paths = Object.keys(files)

const batch = await backups.createBackups(uuid, paths)
console.log(`1. backed up ${batch.backedUp.length} files under patch ${uuid}`)
for (const file of paths) {
  const info = batch.files[file]
  console.log(`   ${file}  ${info.size} B  ${info.integrity.slice(0, 22)}…`)
}

for (const file of paths)
  await writeFile(path.join(project, file), `// patched by demo\n${files[file]}`)
console.log('2. patched every file (each now starts with "// patched by demo")')

const result = await backups.restoreAllBackups(uuid)
console.log(`3. restored ${result.restored.length} files, ${result.failed.length} failed`)

let ok = true
for (const file of paths) {
  const now = await readFile(path.join(project, file))
  const same = now.equals(Buffer.from(files[file]))
  ok &&= same
  console.log(`   ${same ? 'identical' : 'DIFFERENT'}  ${file}  sha256 ${sha(now)}`)
}

console.log(`4. patches in store: ${(await backups.listAllPatches()).join(', ')}`)
await backups.cleanupBackups(uuid)
console.log(`5. cleaned up; patches left: ${(await backups.listAllPatches()).length}`)
await rm(work, { recursive: true, force: true })
console.log(ok ? '\ndemo ok: every file restored byte for byte' : '\ndemo FAILED')
process.exitCode = ok ? 0 : 1
