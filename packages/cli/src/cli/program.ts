import { Argument, Command, type CommanderError } from 'commander'
import type { CommandName, Commands } from './commands.js'
import { HelpShown, UsageError } from './usage-error.js'

export interface GlobalFlags {
  dir?: string
  /** `s3://bucket/prefix`: keep the bytes there instead of `<dir>/_cacache`. */
  store?: string
  cwd?: string
  /** Restore, undo and back up absolute paths outside the project root too. */
  allowOutside?: boolean
  json?: boolean
  quiet?: boolean
  /** `false` with `--no-color`. */
  color?: boolean
  /** Take the encryption key from this file for this run. */
  keyFile?: string
  /** `false` with `--no-auto-prune`: the config's retention does not run. */
  autoPrune?: boolean
}

export interface Invocation<K extends CommandName = CommandName> {
  name: K
  options: Commands[K][0]
  globals: GlobalFlags
  /** `patch-backup restore [options] <uuid> [files...]`, for a usage error found after the parse. */
  usage: string
  /** `patch-backup restore` */
  commandPath: string
}

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

/** The command line, without running anything: an action only records what was asked. */
export function buildProgram(
  version: string,
  io: ProgramIo,
  onInvoke: (invocation: Invocation) => void,
): Command {
  const program = new Command('patch-backup')
  program
    .description(
      'Back up files before a patch rewrites them; check, diff and restore them byte for byte.',
    )
    .version(version, '-v, --version', 'print the version')
    .helpOption('-h, --help', 'show help for a command')
    .option('--dir <path>', 'backup root (default: $PATCH_BACKUP_DIR, else ~/.socket)')
    .option(
      '--store <url>',
      'keep the backed-up bytes in s3://<bucket>/<prefix> (default: $PATCH_BACKUP_STORE, else <dir>/_cacache); manifests stay under --dir',
    )
    .option(
      '--cwd <path>',
      'project root; file arguments are relative to it (default: the root the patch recorded, else the nearest directory above . with a package.json or node_modules, outside node_modules; file arguments relative to .)',
    )
    .option(
      '--allow-outside',
      'let backup, restore and undo touch absolute paths outside the project root (written by a library caller or the seed module)',
    )
    .option('--json', 'print exactly one JSON document on stdout, also on failure')
    .option('-q, --quiet', 'print nothing on success; problems still go to stderr')
    .option('--no-color', 'no colours (also NO_COLOR); colour is only used on a terminal')
    .option(
      '--key-file <path>',
      "encryption key for this run: base64, hex or 32 raw bytes (default: the config's keySource, e.g. $PATCH_BACKUP_KEY)",
    )
    .option('--no-auto-prune', "do not run the config's retention after backups in this run")
    .configureHelp({ showGlobalOptions: true })
    .configureOutput({
      writeOut: io.writeOut,
      writeErr: io.writeErr,
      // Usage errors are printed by the entry point, as one line plus the usage.
      outputError: () => {},
    })
    .addHelpText('after', EXAMPLES)
    .exitOverride(exitFor(program))

  const add = <K extends CommandName>(
    name: K,
    describe: (cmd: Command) => Command,
    toOptions: (args: unknown[], opts: Record<string, unknown>) => Commands[K][0],
  ) => {
    const cmd = describe(program.command(name))
    cmd.exitOverride(exitFor(cmd)).action((...args: unknown[]) => {
      const self = args[args.length - 1] as Command
      const positional = args.slice(0, -2)
      onInvoke({
        name,
        options: toOptions(positional, self.opts()),
        globals: self.optsWithGlobals() as GlobalFlags,
        usage: `${commandPath(self)} ${self.usage()}`,
        commandPath: commandPath(self),
      } as Invocation)
    })
  }

  add(
    'backup',
    (c) =>
      c
        .description('back up files under a patch (the first backup of a file wins)')
        .argument('<uuid>', 'patch id')
        .argument(
          '<files...>',
          'files to back up, relative to --cwd; a directory stands for every regular file under it',
        )
        .option('--overwrite', "replace existing backups with the files' current bytes")
        .option(
          '--break-links',
          'give a file with other hard links (a pnpm store) its own copy first, so a patch written in place stays in this project',
        ),
    ([uuid, files], opts) => ({
      uuid: uuid as string,
      files: files as string[],
      overwrite: !!opts.overwrite,
      breakLinks: !!opts.breakLinks,
    }),
  )
  add(
    'record',
    (c) =>
      c
        .description(
          "after applying a patch, record each file's patched bytes (the --record step), so status and restore can tell later changes from the patch's",
        )
        .argument('<uuid>', 'patch id')
        .argument('[files...]', 'files to record (default: every file of the patch)'),
    ([uuid, files]) => ({ uuid: uuid as string, files: files as string[] }),
  )
  add(
    'restore',
    (c) =>
      c
        .description(
          'restore every file of a patch (all or nothing), or the files named (one by one), verifying every byte',
        )
        .argument('<uuid>', 'patch id')
        .argument('[files...]', 'files to restore (default: all of them)')
        .option(
          '--no-atomic',
          'restore a whole patch file by file: what can be restored is, the rest is left as it is',
        )
        .option(
          '--force',
          "also restore files that changed since the patch was recorded (drifted); their current bytes are kept for 'undo'",
        )
        .option(
          '--dry-run',
          'read and verify the backups, report what would change, write nothing',
        ),
    ([uuid, files], opts) => ({
      uuid: uuid as string,
      files: files as string[],
      dryRun: !!opts.dryRun,
      atomic: opts.atomic !== false,
      force: !!opts.force,
    }),
  )
  add(
    'undo',
    (c) =>
      c
        .description('put back what the last all-or-nothing or forced restore of a patch replaced')
        .argument('<uuid>', 'patch id'),
    ([uuid]) => ({ uuid: uuid as string }),
  )
  add(
    'recover',
    (c) =>
      c
        .description(
          'finish or roll back a restore of a patch that was interrupted (a crash, a kill)',
        )
        .argument('<uuid>', 'patch id'),
    ([uuid]) => ({ uuid: uuid as string }),
  )
  add(
    'list',
    (c) => c.description("list every patch, or one patch's files").argument('[uuid]', 'patch id'),
    ([uuid]) => ({ uuid: uuid as string | undefined }),
  )
  add(
    'info',
    (c) =>
      c
        .description("show a patch's metadata, or one backed-up file's")
        .argument('<uuid>', 'patch id')
        .argument('[file]', 'a file of the patch'),
    ([uuid, file]) => ({ uuid: uuid as string, file: file as string | undefined }),
  )
  add(
    'cleanup',
    (c) =>
      c
        .description('remove patches and free the bytes no other patch needs')
        .argument('<uuids...>', 'patch ids'),
    ([uuids]) => ({ uuids: uuids as string[] }),
  )
  add(
    'verify',
    (c) =>
      c
        .description('re-hash every stored backup of a patch (or of all) and report damage')
        .argument('[uuid]', 'patch id (default: every patch)'),
    ([uuid]) => ({ uuid: uuid as string | undefined }),
  )
  add(
    'gc',
    (c) =>
      c
        .description('free stored bytes that no patch references')
        .option(
          '--force',
          'accepted for older scripts; gc on a bucket no longer needs it (the manifests are in the bucket)',
        ),
    (_args, opts) => ({ force: !!opts.force }),
  )
  add(
    'status',
    (c) =>
      c
        .description('show each file of a patch as original, patched, drifted, modified or missing')
        .argument('<uuid>', 'patch id'),
    ([uuid]) => ({ uuid: uuid as string }),
  )
  add(
    'diff',
    (c) =>
      c
        .description('show what changed in a file since its backup')
        .argument('<uuid>', 'patch id')
        .argument('<file>', 'a file of the patch'),
    ([uuid, file]) => ({ uuid: uuid as string, file: file as string }),
  )
  add(
    'prune',
    (c) =>
      c
        .description(
          'remove the oldest patches by age, total size, patch size or count, freeing the bytes only they used',
        )
        .option('--older-than <duration>', 'patches backed up more than this ago (30d, 12h, 15m)')
        .option(
          '--max-size <size>',
          'then the oldest, until the rest hold at most this (2GB, 512MiB)',
        )
        .option('--max-patch-size <size>', 'every patch that alone holds more than this (200MB)')
        .option(
          '--keep-last <n>',
          'never remove the newest n; given alone, remove all but the newest n',
        )
        .option('--dry-run', 'list what would be removed, remove nothing'),
    (_args, opts) => ({
      olderThan: opts.olderThan as string | undefined,
      maxSize: opts.maxSize as string | undefined,
      maxPatchSize: opts.maxPatchSize as string | undefined,
      keepLast: opts.keepLast as string | undefined,
      dryRun: !!opts.dryRun,
    }),
  )
  add(
    'migrate-manifests',
    (c) =>
      c
        .description(
          "with --store s3://…: move the manifests this root keeps locally (an older CLI's) into the bucket, so every machine with the URL sees those patches",
        )
        .option('--dry-run', 'list what would move, move nothing'),
    (_args, opts) => ({ dryRun: !!opts.dryRun }),
  )
  add(
    'key',
    (c) =>
      c
        .description(
          'encryption keys: "key generate" prints a new random key (base64) for PATCH_BACKUP_KEY or a key file',
        )
        .addArgument(new Argument('<action>', 'what to do').choices(['generate'])),
    () => ({ action: 'generate' as const }),
  )
  return program
}
