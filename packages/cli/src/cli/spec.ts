import type { CommandName, Commands } from './commands.js'

/**
 * The command line as data: its global options and each command's arguments and options. Two
 * parsers read it. `parseTypical` (below) takes the lines scripts and people type most, without
 * loading anything; commander (program.ts) builds the help from it and takes every other line,
 * including each one with an error, so errors and help read as they always did.
 */

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

/** An option as commander spells it: `-q, --quiet`, `--dir <path>`, `--no-color`. */
export interface OptionSpec {
  flags: string
  description: string
}

/** `<uuid>`, `[file]`, `<files...>`, `[files...]`. */
export interface ArgumentSpec {
  name: string
  description: string
  /** The only values it takes. */
  choices?: readonly string[]
}

export interface CommandSpec<K extends CommandName> {
  description: string
  args?: readonly ArgumentSpec[]
  options?: readonly OptionSpec[]
  /** The command's options from its arguments (in order) and commander-style `opts()`. */
  toOptions: (args: unknown[], opts: Record<string, unknown>) => Commands[K][0]
}

export const PROGRAM = 'patch-backup'

export const GLOBAL_OPTIONS: readonly OptionSpec[] = [
  {
    flags: '--dir <path>',
    description: 'backup root (default: $PATCH_BACKUP_DIR, else ~/.socket)',
  },
  {
    flags: '--store <url>',
    description:
      'keep the backed-up bytes in s3://<bucket>/<prefix> (default: $PATCH_BACKUP_STORE, else <dir>/_cacache); manifests stay under --dir',
  },
  {
    flags: '--cwd <path>',
    description:
      'project root; file arguments are relative to it (default: the root the patch recorded, else the nearest directory above . with a package.json or node_modules, outside node_modules; file arguments relative to .)',
  },
  {
    flags: '--allow-outside',
    description:
      'let backup, restore and undo touch absolute paths outside the project root (written by a library caller or the seed module)',
  },
  { flags: '--json', description: 'print exactly one JSON document on stdout, also on failure' },
  { flags: '-q, --quiet', description: 'print nothing on success; problems still go to stderr' },
  {
    flags: '--no-color',
    description: 'no colours (also NO_COLOR); colour is only used on a terminal',
  },
  {
    flags: '--key-file <path>',
    description:
      "encryption key for this run: base64, hex or 32 raw bytes (default: the config's keySource, e.g. $PATCH_BACKUP_KEY)",
  },
  {
    flags: '--no-auto-prune',
    description: "do not run the config's retention after backups in this run",
  },
]

const UUID: ArgumentSpec = { name: '<uuid>', description: 'patch id' }

/** Every command, in the order the help lists them. */
export const COMMANDS: { readonly [K in CommandName]: CommandSpec<K> } = {
  backup: {
    description: 'back up files under a patch (the first backup of a file wins)',
    args: [
      UUID,
      {
        name: '<files...>',
        description:
          'files to back up, relative to --cwd; a directory stands for every regular file under it',
      },
    ],
    options: [
      {
        flags: '--overwrite',
        description: "replace existing backups with the files' current bytes",
      },
      {
        flags: '--break-links',
        description:
          'give a file with other hard links (a pnpm store) its own copy first, so a patch written in place stays in this project',
      },
    ],
    toOptions: ([uuid, files], opts) => ({
      uuid: uuid as string,
      files: files as string[],
      overwrite: !!opts.overwrite,
      breakLinks: !!opts.breakLinks,
    }),
  },
  record: {
    description:
      "after applying a patch, record each file's patched bytes (the --record step), so status and restore can tell later changes from the patch's",
    args: [
      UUID,
      { name: '[files...]', description: 'files to record (default: every file of the patch)' },
    ],
    toOptions: ([uuid, files]) => ({ uuid: uuid as string, files: files as string[] }),
  },
  restore: {
    description:
      'restore every file of a patch (all or nothing), or the files named (one by one), verifying every byte',
    args: [UUID, { name: '[files...]', description: 'files to restore (default: all of them)' }],
    options: [
      {
        flags: '--no-atomic',
        description:
          'restore a whole patch file by file: what can be restored is, the rest is left as it is',
      },
      {
        flags: '--force',
        description:
          "also restore files that changed since the patch was recorded (drifted); their current bytes are kept for 'undo'",
      },
      {
        flags: '--dry-run',
        description: 'read and verify the backups, report what would change, write nothing',
      },
    ],
    toOptions: ([uuid, files], opts) => ({
      uuid: uuid as string,
      files: files as string[],
      dryRun: !!opts.dryRun,
      atomic: opts.atomic !== false,
      force: !!opts.force,
    }),
  },
  undo: {
    description: 'put back what the last all-or-nothing or forced restore of a patch replaced',
    args: [UUID],
    toOptions: ([uuid]) => ({ uuid: uuid as string }),
  },
  recover: {
    description: 'finish or roll back a restore of a patch that was interrupted (a crash, a kill)',
    args: [UUID],
    options: [
      {
        flags: '--force',
        description:
          "also when the restore's process looks alive: only if no restore of this patch is running (its process id now belongs to another program)",
      },
    ],
    toOptions: ([uuid], opts) => ({ uuid: uuid as string, force: !!opts.force }),
  },
  list: {
    description: "list every patch, or one patch's files",
    args: [{ name: '[uuid]', description: 'patch id' }],
    toOptions: ([uuid]) => ({ uuid: uuid as string | undefined }),
  },
  info: {
    description: "show a patch's metadata, or one backed-up file's",
    args: [UUID, { name: '[file]', description: 'a file of the patch' }],
    toOptions: ([uuid, file]) => ({ uuid: uuid as string, file: file as string | undefined }),
  },
  cleanup: {
    description: 'remove patches and free the bytes no other patch needs',
    args: [{ name: '<uuids...>', description: 'patch ids' }],
    toOptions: ([uuids]) => ({ uuids: uuids as string[] }),
  },
  verify: {
    description: 're-hash every stored backup of a patch (or of all) and report damage',
    args: [{ name: '[uuid]', description: 'patch id (default: every patch)' }],
    toOptions: ([uuid]) => ({ uuid: uuid as string | undefined }),
  },
  gc: {
    description: 'free stored bytes that no patch references',
    options: [
      {
        flags: '--force',
        description:
          'accepted for older scripts; gc on a bucket no longer needs it (the manifests are in the bucket)',
      },
    ],
    toOptions: (_args, opts) => ({ force: !!opts.force }),
  },
  status: {
    description: 'show each file of a patch as original, patched, drifted, modified or missing',
    args: [UUID],
    toOptions: ([uuid]) => ({ uuid: uuid as string }),
  },
  diff: {
    description: 'show what changed in a file since its backup',
    args: [UUID, { name: '<file>', description: 'a file of the patch' }],
    toOptions: ([uuid, file]) => ({ uuid: uuid as string, file: file as string }),
  },
  prune: {
    description:
      'remove the oldest patches by age, total size, patch size or count, freeing the bytes only they used',
    options: [
      {
        flags: '--older-than <duration>',
        description: 'patches backed up more than this ago (30d, 12h, 15m)',
      },
      {
        flags: '--max-size <size>',
        description: 'then the oldest, until the rest hold at most this (2GB, 512MiB)',
      },
      {
        flags: '--max-patch-size <size>',
        description: 'every patch that alone holds more than this (200MB)',
      },
      {
        flags: '--keep-last <n>',
        description: 'never remove the newest n; given alone, remove all but the newest n',
      },
      { flags: '--dry-run', description: 'list what would be removed, remove nothing' },
    ],
    toOptions: (_args, opts) => ({
      olderThan: opts.olderThan as string | undefined,
      maxSize: opts.maxSize as string | undefined,
      maxPatchSize: opts.maxPatchSize as string | undefined,
      keepLast: opts.keepLast as string | undefined,
      dryRun: !!opts.dryRun,
    }),
  },
  'migrate-manifests': {
    description:
      "with --store s3://…: move the manifests this root keeps locally (an older CLI's) into the bucket, so every machine with the URL sees those patches",
    options: [{ flags: '--dry-run', description: 'list what would move, move nothing' }],
    toOptions: (_args, opts) => ({ dryRun: !!opts.dryRun }),
  },
  key: {
    description:
      'encryption keys: "key generate" prints a new random key (base64) for PATCH_BACKUP_KEY or a key file',
    args: [{ name: '<action>', description: 'what to do', choices: ['generate'] }],
    toOptions: () => ({ action: 'generate' as const }),
  },
}

export const COMMAND_NAMES = Object.keys(COMMANDS) as CommandName[]

interface Flag {
  /** commander's attribute name: `--key-file` → `keyFile`, `--no-color` → `color`. */
  attribute: string
  takesValue: boolean
  negated: boolean
}

function flagsOf(options: readonly OptionSpec[]): Map<string, Flag> {
  const flags = new Map<string, Flag>()
  for (const { flags: spelled } of options) {
    const words = spelled.split(/[ ,|]+/)
    const long = words.find((w) => w.startsWith('--')) as string
    const negated = long.startsWith('--no-')
    const attribute = long
      .slice(negated ? 5 : 2)
      .replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase())
    const flag = { attribute, takesValue: words.some((w) => w.startsWith('<')), negated }
    for (const w of words) if (w.startsWith('-')) flags.set(w, flag)
  }
  return flags
}

/** What commander's `opts()` holds before any flag: `true` for each `--no-…` option. */
function defaultsOf(flags: Map<string, Flag>): Record<string, unknown> {
  const opts: Record<string, unknown> = {}
  for (const flag of flags.values()) if (flag.negated) opts[flag.attribute] = true
  return opts
}

const GLOBAL_FLAGS = flagsOf(GLOBAL_OPTIONS)

/** commander's usage line of a command: `[options] <uuid> [files...]`. */
export function usageOf(name: CommandName): string {
  return ['[options]', ...(COMMANDS[name].args ?? []).map((a) => a.name)].join(' ')
}

const looksLikeOption = (arg: string) => arg.startsWith('-')

/**
 * Reads `argv` into what commander would make of it, when that is plain to see: known flags
 * spelled out (`--dir x`, `-q`), a known command, the right number of arguments, no value or
 * argument starting with `-`. Anything else (help, `--version`, `--opt=value`, `--`, grouped
 * short flags, an unknown option or command, a missing argument) gives `undefined`, and commander
 * parses the line: it says what is wrong, or shows the help.
 *
 * Like commander, global options count anywhere on the line, a later one wins, and a command's
 * globals include its own options (commander's `optsWithGlobals()`).
 */
export function parseTypical(argv: readonly string[]): Invocation | undefined {
  const globals = defaultsOf(GLOBAL_FLAGS)
  const rest: string[] = []
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string
    const flag = looksLikeOption(arg) ? GLOBAL_FLAGS.get(arg) : undefined
    if (!flag) {
      rest.push(arg)
      continue
    }
    if (flag.takesValue) {
      const value = argv[++i]
      if (value === undefined || looksLikeOption(value)) return undefined
      globals[flag.attribute] = value
    } else globals[flag.attribute] = !flag.negated
  }
  const [name, ...words] = rest
  if (name === undefined || !Object.hasOwn(COMMANDS, name)) return undefined
  const spec = COMMANDS[name as CommandName] as CommandSpec<CommandName>
  const flags = flagsOf(spec.options ?? [])
  const opts = defaultsOf(flags)
  const operands: string[] = []
  for (let i = 0; i < words.length; i++) {
    const word = words[i] as string
    if (!looksLikeOption(word)) {
      operands.push(word)
      continue
    }
    const flag = flags.get(word)
    if (!flag) return undefined
    if (flag.takesValue) {
      const value = words[++i]
      if (value === undefined || looksLikeOption(value)) return undefined
      opts[flag.attribute] = value
    } else opts[flag.attribute] = !flag.negated
  }
  const declared = spec.args ?? []
  const variadic = declared.at(-1)?.name.endsWith('...]') || declared.at(-1)?.name.endsWith('...>')
  if (!variadic && operands.length > declared.length) return undefined
  const args: unknown[] = []
  for (const [index, arg] of declared.entries()) {
    const value =
      arg.name.endsWith('...>') || arg.name.endsWith('...]')
        ? operands.slice(index)
        : operands[index]
    const missing = value === undefined || (Array.isArray(value) && value.length === 0)
    if (arg.name.startsWith('<') && missing) return undefined
    if (arg.choices && typeof value === 'string' && !arg.choices.includes(value)) return undefined
    args.push(value)
  }
  const commandPath = `${PROGRAM} ${name}`
  return {
    name: name as CommandName,
    options: spec.toOptions(args, opts),
    globals: { ...opts, ...globals } as GlobalFlags,
    usage: `${commandPath} ${usageOf(name as CommandName)}`,
    commandPath,
  }
}
