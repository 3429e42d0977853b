import { spawn } from 'node:child_process'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

/** The bin package.json names (it runs the build's dist/bin.js), run as a user runs it. */
export const BIN = fileURLToPath(new URL('../bin/patch-backup.js', import.meta.url))

export interface Run {
  code: number | null
  stdout: string
  stderr: string
}

export interface RunOptions {
  cwd?: string
  env?: NodeJS.ProcessEnv
  /** Execute this file itself (its shebang picks node), e.g. a globally installed bin. */
  executable?: string
  /** Extra node flags, e.g. `--import` a tracer. */
  nodeArgs?: string[]
}

/** The environment a spawned bin sees: ours without anything that would colour or redirect it. */
export function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env = { ...process.env }
  for (const name of ['PATCH_BACKUP_DIR', 'NO_COLOR', 'FORCE_COLOR', 'NODE_OPTIONS'])
    delete env[name]
  return { ...env, ...extra }
}

export function run(args: readonly string[], options: RunOptions = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const [command, argv] = options.executable
      ? [options.executable, [...args]]
      : [process.execPath, [...(options.nodeArgs ?? []), BIN, ...args]]
    const child = spawn(command, argv, {
      cwd: options.cwd,
      env: options.env ?? cleanEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d
    })
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d
    })
    child.on('error', reject)
    child.on('close', (code) => resolve({ code, stdout, stderr }))
  })
}

export interface Sandbox {
  /** The project: relative file paths resolve here. */
  project: string
  /** The backup root given as --dir. */
  store: string
  cache: string
  /** Runs the bin in the project against the sandbox's store. */
  cli(args: readonly string[], options?: RunOptions): Promise<Run>
  write(file: string, content: string | Uint8Array): Promise<void>
  remove(): Promise<void>
}

export async function sandbox(files: Record<string, string | Uint8Array> = {}): Promise<Sandbox> {
  const work = await mkdtemp(path.join(os.tmpdir(), 'pb-cli-'))
  const project = path.join(work, 'project')
  const store = path.join(work, 'store')
  await mkdir(project, { recursive: true })
  const write = async (file: string, content: string | Uint8Array) => {
    const target = path.join(project, file)
    await mkdir(path.dirname(target), { recursive: true })
    await writeFile(target, content)
  }
  for (const [file, content] of Object.entries(files)) await write(file, content)
  return {
    project,
    store,
    cache: path.join(store, '_cacache'),
    cli: (args, options = {}) => run(['--dir', store, ...args], { cwd: project, ...options }),
    write,
    remove: () => rm(work, { recursive: true, force: true }),
  }
}

/** Parses stdout as the single JSON document `--json` promises (throws on anything else). */
export function json<T = Record<string, unknown>>(result: Run): T {
  return JSON.parse(result.stdout) as T
}
