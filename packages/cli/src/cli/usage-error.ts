/** A command line that does not parse: exit 2 with a one-line hint and the command's usage. */
export class UsageError extends Error {
  override readonly name = 'UsageError'

  constructor(
    message: string,
    /** `patch-backup restore [options] <uuid> [files...]` */
    readonly usage: string,
    /** The command whose `--help` tells more: `patch-backup restore`. */
    readonly commandPath: string,
  ) {
    super(message)
  }
}

/** `--help`, `--version` and `help`: commander ends the parse this way, and the exit is 0. */
export class HelpShown extends Error {
  override readonly name = 'HelpShown'
}
