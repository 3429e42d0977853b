import pkg from '../../package.json' with { type: 'json' }
import { jsonError } from '../output/json.js'
import { colorEnabled, createStyle } from '../output/style.js'
import { succeeded } from './commands.js'
import { COMMAND_NAMES, type Invocation, parseTypical } from './spec.js'
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
  const program = await buildProgram(
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
    // One module holds the run: opening the service, the command, the printing.
    const { execute, print } = await import('./execute.js')
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
