import { type ChildProcess, type SpawnOptions, spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { PatchManifest } from '@patch-backup/core'

export const WORKER = fileURLToPath(new URL('./fixtures/worker.mjs', import.meta.url))
const BUILT = fileURLToPath(new URL('../dist/index.js', import.meta.url))

/** The child-process tests run the built package, as another process really would. */
export function assertBuilt(): void {
  if (!existsSync(BUILT)) {
    throw new Error(
      `${BUILT} is missing: run \`pnpm --filter @patch-backup/manifest build\` first.`,
    )
  }
}

export async function tempRoot(): Promise<{
  root: string
  dir: string
  dispose: () => Promise<void>
}> {
  const root = await mkdtemp(join(tmpdir(), 'pb-manifest-'))
  return {
    root,
    dir: join(root, '_patches', 'manifests'),
    dispose: () => rm(root, { recursive: true, force: true }),
  }
}

export interface Worker {
  child: ChildProcess
  /** Everything printed so far. */
  output(): string
  /** Resolves when a line equal to `line` has been printed; rejects if the child exits first. */
  waitFor(line: string): Promise<void>
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

/** Spawns the worker fixture; `shellPrefix` runs it under `sh -c '<prefix>; exec node …'`. */
export function spawnWorker(
  args: string[],
  shellPrefix?: string,
  env: NodeJS.ProcessEnv = {},
): Worker {
  const options: SpawnOptions = {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  }
  const child =
    shellPrefix === undefined
      ? spawn(process.execPath, [WORKER, ...args], options)
      : spawn(
          'sh',
          ['-c', `${shellPrefix}; exec "$0" "$@"`, process.execPath, WORKER, ...args],
          options,
        )
  let out = ''
  let err = ''
  const waiters: { line: string; resolve: () => void }[] = []
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    out += chunk
    const lines = out.split('\n')
    for (const waiter of [...waiters]) {
      if (lines.includes(waiter.line)) {
        waiters.splice(waiters.indexOf(waiter), 1)
        waiter.resolve()
      }
    }
  })
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    err += chunk
  })
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('exit', (code, signal) => resolve({ code, signal }))
  })
  return {
    child,
    output: () => out + err,
    waitFor(line) {
      if (out.split('\n').includes(line)) return Promise.resolve()
      return new Promise<void>((resolve, reject) => {
        waiters.push({ line, resolve })
        void exited.then(({ code, signal }) =>
          reject(
            new Error(`worker exited (${code ?? signal}) before printing ${line}:\n${out}${err}`),
          ),
        )
      })
    },
    exited,
  }
}

export function manifestWith(
  uuid: string,
  files: string[],
  extra: Record<string, unknown> = {},
): PatchManifest {
  return {
    uuid,
    patchedAt: '2025-01-14T12:00:00Z',
    files: Object.fromEntries(
      files.map((file) => [
        file,
        {
          integrity: 'sha256-qUiQTy8PR5uPgZdpSzAYSw0u0cHNKh7A+4XSmaGSpEc=',
          size: 12345,
          backedUpAt: '2025-01-14T12:00:00Z',
          originalPath: file,
        },
      ]),
    ),
    ...extra,
  }
}

/** The updater the service uses, in short: add `file` to whatever is there. */
export function addFile(uuid: string, file: string) {
  return (current: PatchManifest | undefined): PatchManifest => {
    const base = current ?? { uuid, patchedAt: '2025-01-14T12:00:00Z', files: {} }
    return { ...base, files: { ...base.files, ...manifestWith(uuid, [file]).files } }
  }
}
