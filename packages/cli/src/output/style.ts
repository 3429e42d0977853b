/** ANSI styling that is either on or a no-op, decided once per output stream. */
export interface Style {
  readonly enabled: boolean
  red(text: string): string
  green(text: string): string
  yellow(text: string): string
  cyan(text: string): string
  dim(text: string): string
  bold(text: string): string
}

const wrap = (open: number, close: number) => (text: string) =>
  `\u001b[${open}m${text}\u001b[${close}m`

export function createStyle(enabled: boolean): Style {
  const paint = (open: number, close: number) => (enabled ? wrap(open, close) : (t: string) => t)
  return {
    enabled,
    red: paint(31, 39),
    green: paint(32, 39),
    yellow: paint(33, 39),
    cyan: paint(36, 39),
    dim: paint(2, 22),
    bold: paint(1, 22),
  }
}

export interface ColorInputs {
  /** `false` when `--no-color` was given. */
  flag: boolean | undefined
  env: NodeJS.ProcessEnv
  isTTY: boolean | undefined
}

/** `--no-color` and `NO_COLOR` win, then `FORCE_COLOR`, then whether the stream is a terminal. */
export function colorEnabled({ flag, env, isTTY }: ColorInputs): boolean {
  if (flag === false) return false
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false
  if (env.FORCE_COLOR !== undefined && env.FORCE_COLOR !== '') return env.FORCE_COLOR !== '0'
  return !!isTTY
}

const ANSI = new RegExp(`${'\u001b'}\\[[0-9;]*m`, 'g')

/** Length as it shows on a terminal: escape codes take no room. */
export function visibleLength(text: string): number {
  return text.replace(ANSI, '').length
}
