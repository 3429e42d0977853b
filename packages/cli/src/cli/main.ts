import path from 'node:path'
import pkg from '../../package.json' with { type: 'json' }
import type { CommandContext, ProgressSink } from '../commands/context.js'
import { jsonDocument, jsonError } from '../output/json.js'
import { colorEnabled, createStyle } from '../output/style.js'
import {
  type CommandName,
  loadCommand,
  NO_KEY_NEEDED,
  NO_SERVICE,
  READS_FILES_ONLY,
  SHOWS_PROGRESS,
  succeeded,
  WRITES_BACKUPS,
} from './commands.js'
import { COMMAND_NAMES, type GlobalFlags, type Invocation, parseTypical } from './spec.js'
import { HelpShown, UsageError } from './usage-error.js'

export interface MainIo {
  stdout: NodeJS.WritableStream & { isTTY?: boolean }
  stderr: NodeJS.WritableStream & { isTTY?: boolean }
  env?: NodeJS.ProcessEnv
}

export const EXIT_OK = 0
export const EXIT_FAILED = 1
export const EXIT_USAGE = 2

/** `--json` decides the shape of errors too, including the ones that stop the parse. */
function wantsJson(argv: readonly string[]): boolean {
  const end = argv.indexOf('--')
  return (end === -1 ? argv : argv.slice(0, end)).includes('--json')
}

async function asPatchBackupError(error: unknown) {
  const { PatchBackupError } = await import('@patch-backup/core')
  if (error instanceof PatchBackupError) return error
  const message = error instanceof Error ? error.message : String(error)
  return new PatchBackupError('UNEXPECTED', `Unexpected failure: ${message}`, { cause: error })
}

/** `--store`, else `PATCH_BACKUP_STORE`; `undefined` for the local cacache store. */
function storeUrl(globals: GlobalFlags, env: NodeJS.ProcessEnv) {
  if (globals.store !== undefined) return { url: globals.store, source: '--store' }
  const fromEnv = env.PATCH_BACKUP_STORE
  return fromEnv ? { url: fromEnv, source: 'PATCH_BACKUP_STORE' } : undefined
}

/** Opens the remote store, if one is asked for; a URL that names none is a usage error. */
async function openRemote(invocation: Invocation, env: NodeJS.ProcessEnv) {
  const wanted = storeUrl(invocation.globals, env)
  if (!wanted) return undefined
  // With a bucket, the manifests live there too: every command reads it. Loaded only now: a run without --store never loads @patch-backup/store-s3 or the AWS SDK.
  const { openRemoteStore, StoreUrlError } = await import('../remote-store.js')
  try {
    return { url: wanted.url, ...(await openRemoteStore(wanted.url, wanted.source)) }
  } catch (error) {
    if (!(error instanceof StoreUrlError)) throw error
    throw new UsageError(error.message, invocation.usage, invocation.commandPath)
  }
}

/** The run's project root and where its file arguments resolve (see project.ts). */
async function projectOf(invocation: Invocation) {
  const { globals, options } = invocation
  const { badCwd, runProject } = await import('../project.js')
  if (globals.cwd !== undefined) {
    // A --cwd that is no directory would make status say "all missing" and a dry run promise a
    // restore that then fails: say so before anything runs.
    const why = await badCwd(path.resolve(globals.cwd))
    if (why) throw new UsageError(why, invocation.usage, invocation.commandPath)
  }
  const uuid = (options as { uuid?: unknown }).uuid
  let manifestsDir: string | undefined
  if (typeof uuid === 'string' && globals.cwd === undefined) {
    const { layout, resolveRoot } = await import('../root.js')
    try {
      manifestsDir = layout(resolveRoot({ dir: globals.dir })).manifests
    } catch {
      // no usable backup root: opening the service reports it
    }
  }
  return runProject({ cwdFlag: globals.cwd, manifestsDir, uuid: uuid as string | undefined })
}

async function execute(invocation: Invocation, io: MainIo, env: NodeJS.ProcessEnv) {
  const { name, options, globals } = invocation
  if (NO_SERVICE.has(name)) {
    const run = await loadCommand[name]()
    return (run as (o: unknown) => Promise<unknown>)(options)
  }
  const remote = await openRemote(invocation, env)
  try {
    let progress: ProgressSink | undefined
    if (SHOWS_PROGRESS.has(name) && io.stderr.isTTY && !globals.quiet) {
      const { createProgress } = await import('../output/progress.js')
      progress = createProgress(io.stderr)
    }
    const [{ openPatchBackupsAsync }, countTransfers, run] = await Promise.all([
      import('../open.js'),
      // Only a drawn bar counts bytes.
      progress ? import('../output/count-transfers.js').then((m) => m.countTransfers) : undefined,
      loadCommand[name](),
    ])
    const sink = progress
    const project = await projectOf(invocation)
    const backups = await openPatchBackupsAsync({
      dir: globals.dir,
      cwd: project.cwd,
      projectRoot: project.projectRoot,
      outsideProject: globals.allowOutside || READS_FILES_ONLY.has(name) ? 'allow' : 'refuse',
      store: remote?.store,
      sharedManifests: remote?.manifests,
      decorateStore: sink && countTransfers ? (store) => countTransfers(store, sink) : undefined,
      policies: {
        env,
        forWriting: WRITES_BACKUPS.has(name),
        keyFile: globals.keyFile,
        autoPrune: globals.autoPrune !== false,
        needsKey: !NO_KEY_NEEDED.has(name),
        describeKey: name === 'info',
      },
    })
    const context: CommandContext = { backups, policy: backups.policy }
    if (progress) context.progress = progress
    if (remote) context.remote = remote.url
    return await (run as (o: unknown, c: CommandContext) => Promise<unknown>)(options, context)
  } finally {
    remote?.close()
  }
}

async function print(
  name: CommandName,
  data: unknown,
  globals: GlobalFlags,
  io: MainIo,
  env: NodeJS.ProcessEnv,
) {
  if (globals.json) {
    io.stdout.write(jsonDocument(data))
    return
  }
  const { human } = await import('../output/human.js')
  const render = human[name] as (
    d: unknown,
    s: ReturnType<typeof createStyle>,
  ) => {
    stdout: string
    stderr: string
  }
  const out = render(
    data,
    createStyle(colorEnabled({ flag: globals.color, env, isTTY: io.stdout.isTTY })),
  )
  const err = render(
    data,
    createStyle(colorEnabled({ flag: globals.color, env, isTTY: io.stderr.isTTY })),
  )
  if (!globals.quiet && out.stdout) io.stdout.write(out.stdout)
  if (err.stderr) io.stderr.write(err.stderr)
}

/** One line saying what is wrong, then the usage, on stderr (and the JSON error with `--json`): exit 2. */
function usageError(
  error: UsageError,
  argv: readonly string[],
  io: MainIo,
  env: NodeJS.ProcessEnv,
  code = 'USAGE_ERROR',
): number {
  const noColor = argv.includes('--no-color')
  const s = createStyle(
    colorEnabled({ flag: noColor ? false : undefined, env, isTTY: io.stderr.isTTY }),
  )
  io.stderr.write(
    `${s.red('error:')} ${error.message}\nUsage: ${error.usage}\nRun '${error.commandPath} --help' for details.\n`,
  )
  if (wantsJson(argv)) io.stdout.write(jsonError(code, error.message))
  return EXIT_USAGE
}

/** Global options that take a value: their value is not the command. */
const VALUED = new Set(['--dir', '--store', '--cwd', '--key-file'])

/** `help <name>` for a name that is no command: commander would print the whole help, then "missing command". */
function unknownHelpTopic(argv: readonly string[], known: readonly string[]): string | undefined {
  const words: string[] = []
  for (let i = 0; i < argv.length && words.length < 2; i++) {
    const arg = argv[i] as string
    if (arg === '--') break
    if (VALUED.has(arg)) i++
    else if (!arg.startsWith('-')) words.push(arg)
  }
  const [first, topic] = words
  if (first !== 'help' || topic === undefined || known.includes(topic)) return undefined
  return topic
}

/**
 * The invocation `argv` asks for, or `undefined` when it asked for help or the version (printed).
 * A typical line is read without loading commander (spec.ts); any other goes through it.
 */
async function parse(argv: readonly string[], io: MainIo): Promise<Invocation | undefined> {
  const typical = parseTypical(argv)
  if (typical) return typical
  const { buildProgram } = await import('./program.js')
  let invocation: Invocation | undefined
  const program = buildProgram(
    pkg.version,
    { writeOut: (t) => io.stdout.write(t), writeErr: (t) => io.stderr.write(t) },
    (i) => {
      invocation = i
    },
  )
  try {
    program.parse([...argv], { from: 'user' })
  } catch (error) {
    if (error instanceof HelpShown) return undefined
    throw error
  }
  return invocation
}

/** Parses argv, runs one command, prints its result or error; returns the exit code. Never exits. */
export async function main(argv: readonly string[], io: MainIo): Promise<number> {
  const env = io.env ?? process.env
  const topic = unknownHelpTopic(argv, COMMAND_NAMES)
  if (topic !== undefined) {
    const message = `unknown command '${topic}' (commands: ${COMMAND_NAMES.join(', ')})`
    return usageError(
      new UsageError(message, 'patch-backup help [command]', 'patch-backup'),
      argv,
      io,
      env,
    )
  }
  let invocation: Invocation | undefined
  try {
    invocation = await parse(argv, io)
  } catch (error) {
    if (!(error instanceof UsageError)) throw error
    return usageError(error, argv, io, env)
  }
  if (!invocation) return EXIT_OK
  const { name, globals } = invocation
  try {
    const data = await execute(invocation, io, env)
    await print(name, data, globals, io, env)
    return (succeeded[name] as (d: unknown) => boolean)(data) ? EXIT_OK : EXIT_FAILED
  } catch (caught) {
    if (caught instanceof UsageError) {
      // A command's own usage error (a bad --older-than) carries no usage line: it is this one.
      const full = caught.usage
        ? caught
        : new UsageError(caught.message, invocation.usage, invocation.commandPath)
      return usageError(full, argv, io, env)
    }
    const error = await asPatchBackupError(caught)
    // A uuid that cannot be one is a mistake in the command line, like an unknown flag: exit 2.
    if (error.code === 'INVALID_UUID') {
      const usage = new UsageError(error.message, invocation.usage, invocation.commandPath)
      return usageError(usage, argv, io, env, error.code)
    }
    if (globals.json) io.stdout.write(jsonError(error.code, error.message))
    else {
      const s = createStyle(colorEnabled({ flag: globals.color, env, isTTY: io.stderr.isTTY }))
      io.stderr.write(`${s.red('error:')} ${error.message}\n`)
    }
    return EXIT_FAILED
  }
}
