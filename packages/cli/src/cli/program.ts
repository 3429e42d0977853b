import type { Command, CommanderError } from 'commander'
import type { CommandName } from './commands.js'
import {
  COMMAND_NAMES,
  COMMANDS,
  type CommandSpec,
  GLOBAL_OPTIONS,
  type GlobalFlags,
  type Invocation,
  PROGRAM,
} from './spec.js'
import { HelpShown, UsageError } from './usage-error.js'

// commander, for the help and for every line `parseTypical` (spec.ts) leaves to it.

export interface ProgramIo {
  writeOut(text: string): void
  writeErr(text: string): void
}

const EXAMPLES = `
Examples:
  $ patch-backup backup fix-123 node_modules/lodash/index.js node_modules/lodash/template.js
  $ # ... apply the patch, then record what it wrote (the --record step):
  $ patch-backup record fix-123
  $ patch-backup status fix-123
  $ patch-backup diff fix-123 node_modules/lodash/index.js
  $ patch-backup restore fix-123 --dry-run
  $ patch-backup restore fix-123
  $ patch-backup undo fix-123
  $ patch-backup cleanup fix-123
  $ patch-backup prune --older-than 30d --dry-run
  $ patch-backup --store s3://my-bucket/patch-backups backup fix-123 node_modules/lodash/index.js

Exit codes: 0 done, 1 the operation failed or found problems, 2 usage error.
`

function commandPath(cmd: Command): string {
  const names: string[] = []
  for (let c: Command | null = cmd; c; c = c.parent) names.unshift(c.name())
  return names.join(' ')
}

/** commander ends every parse that does not reach an action through this: map it to ours. */
function exitFor(cmd: Command) {
  return (error: CommanderError): never => {
    if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version')
      throw new HelpShown(error.code)
    if (error.code === 'commander.help' && error.exitCode === 0) throw new HelpShown(error.code)
    const message = error.message.replace(/^error: /, '')
    const path = commandPath(cmd)
    throw new UsageError(
      error.code === 'commander.help' ? 'missing command' : message,
      `${path} ${cmd.usage()}`,
      path,
    )
  }
}

/**
 * The command line, without running anything: an action only records what was asked. commander
 * is imported here, so only a line that needs it (help, a mistake, an unusual spelling) loads it.
 */
export async function buildProgram(
  version: string,
  io: ProgramIo,
  onInvoke: (invocation: Invocation) => void,
): Promise<Command> {
  const { Argument, Command } = await import('commander')
  const program = new Command(PROGRAM)
  program
    .description(
      'Back up files before a patch rewrites them; check, diff and restore them byte for byte.',
    )
    .version(version, '-v, --version', 'print the version')
    .helpOption('-h, --help', 'show help for a command')
  for (const { flags, description } of GLOBAL_OPTIONS) program.option(flags, description)
  program
    .configureHelp({ showGlobalOptions: true })
    .configureOutput({
      writeOut: io.writeOut,
      writeErr: io.writeErr,
      // Usage errors are printed by the entry point, as one line plus the usage.
      outputError: () => {},
    })
    .addHelpText('after', EXAMPLES)
    .exitOverride(exitFor(program))

  for (const name of COMMAND_NAMES) {
    const spec = COMMANDS[name] as CommandSpec<CommandName>
    const cmd = program.command(name).description(spec.description)
    for (const arg of spec.args ?? []) {
      const argument = new Argument(arg.name, arg.description)
      cmd.addArgument(arg.choices ? argument.choices(arg.choices) : argument)
    }
    for (const { flags, description } of spec.options ?? []) cmd.option(flags, description)
    cmd.exitOverride(exitFor(cmd)).action((...args: unknown[]) => {
      const self = args[args.length - 1] as Command
      const positional = args.slice(0, -2)
      onInvoke({
        name,
        options: spec.toOptions(positional, self.opts()),
        globals: self.optsWithGlobals() as GlobalFlags,
        usage: `${commandPath(self)} ${self.usage()}`,
        commandPath: commandPath(self),
      } as Invocation)
    })
  }
  return program
}
