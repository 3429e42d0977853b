import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'

export function fixture(name: string): string {
  return fileURLToPath(new URL(`../fixtures/${name}`, import.meta.url))
}

export interface ChildOptions {
  env?: NodeJS.ProcessEnv
  /** Replace the environment instead of extending this process's. */
  replaceEnv?: boolean
  cwd?: string
  uid?: number
  gid?: number
  /**
   * Run `node <fixture> …args` through a shell line, e.g. `ulimit -f 64` or a mount in a private
   * mount namespace: `sh -c '<prefix>; exec node …'`. `wrapper` goes before `sh` (e.g. `unshare -m`).
   */
  shellPrefix?: string
  wrapper?: string[]
}

export interface Child {
  child: ChildProcess
  /** stdout and stderr so far, for failure messages. */
  output(): string
  /** Every stdout line that parsed as JSON, in order. */
  messages(): unknown[]
  /** Resolves with the first JSON message `match` accepts; rejects if the child exits first. */
  waitFor<T = Record<string, unknown>>(
    match: (message: Record<string, unknown>) => boolean,
  ): Promise<T>
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  kill(signal?: NodeJS.Signals): Promise<void>
}

/** Spawns `node fixtures/<name> …args` and follows its stdout, one JSON document per line. */
export function spawnChild(name: string, args: string[], options: ChildOptions = {}): Child {
  const env = options.replaceEnv ? { ...options.env } : { ...process.env, ...options.env }
  const command =
    options.shellPrefix === undefined
      ? [process.execPath, fixture(name), ...args]
      : [
          'sh',
          '-c',
          `${options.shellPrefix}\nexec "$0" "$@"`,
          process.execPath,
          fixture(name),
          ...args,
        ]
  const full = [...(options.wrapper ?? []), ...command]
  const child = spawn(full[0] as string, full.slice(1), {
    stdio: ['ignore', 'pipe', 'pipe'],
    env,
    cwd: options.cwd,
    uid: options.uid,
    gid: options.gid,
  })
  let out = ''
  let err = ''
  const messages: unknown[] = []
  const waiters: {
    match: (m: Record<string, unknown>) => boolean
    resolve: (m: unknown) => void
  }[] = []
  let pending = ''
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    out += chunk
    pending += chunk
    const lines = pending.split('\n')
    pending = lines.pop() ?? ''
    for (const line of lines) {
      let message: unknown
      try {
        message = JSON.parse(line)
      } catch {
        continue
      }
      messages.push(message)
      for (const waiter of [...waiters]) {
        if (typeof message === 'object' && message !== null && waiter.match(message as never)) {
          waiters.splice(waiters.indexOf(waiter), 1)
          waiter.resolve(message)
        }
      }
    }
  })
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    err += chunk
  })
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('close', (code, signal) => resolve({ code, signal }))
  })
  return {
    child,
    output: () => `${out}${err}`,
    messages: () => messages,
    waitFor(match) {
      const seen = messages.find(
        (m) => typeof m === 'object' && m !== null && match(m as Record<string, unknown>),
      )
      if (seen) return Promise.resolve(seen as never)
      return new Promise((resolve, reject) => {
        waiters.push({ match, resolve: resolve as (m: unknown) => void })
        void exited.then(({ code, signal }) =>
          reject(new Error(`child ${name} exited (${code ?? signal}) first:\n${out}${err}`)),
        )
      })
    },
    exited,
    async kill(signal = 'SIGKILL') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal)
      await exited
    },
  }
}

/** Runs a child to its end and returns its last JSON message. */
export async function runChild<T = Record<string, unknown>>(
  name: string,
  args: string[],
  options: ChildOptions = {},
): Promise<{ result: T; code: number | null; signal: NodeJS.Signals | null; output: string }> {
  const child = spawnChild(name, args, options)
  const { code, signal } = await child.exited
  const messages = child.messages()
  return { result: messages[messages.length - 1] as T, code, signal, output: child.output() }
}

let namespaces: boolean | undefined
/** Whether this machine lets us mount in a private mount namespace (root with CAP_SYS_ADMIN). */
export function canMountPrivately(): boolean {
  namespaces ??=
    process.platform === 'linux' &&
    spawnSync('unshare', ['-m', 'sh', '-c', 'mount -t tmpfs -o size=64k tmpfs /mnt'], {
      stdio: 'ignore',
    }).status === 0
  return namespaces
}

/** Whether this process can start children as another user (it is root on a POSIX system). */
export function canSwitchUser(): boolean {
  return process.platform !== 'win32' && process.getuid?.() === 0
}
