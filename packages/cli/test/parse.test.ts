import { describe, expect, it } from 'vitest'
import { buildProgram } from '../src/cli/program.js'
import { COMMAND_NAMES, COMMANDS, type Invocation, parseTypical } from '../src/cli/spec.js'
import { HelpShown, UsageError } from '../src/cli/usage-error.js'

/** What commander makes of `argv`: the invocation, or how it ended the parse. */
async function viaCommander(
  argv: readonly string[],
): Promise<Invocation | 'help' | 'usage error' | undefined> {
  let invocation: Invocation | undefined
  const program = await buildProgram('0.0.0', { writeOut: () => {}, writeErr: () => {} }, (i) => {
    invocation = i
  })
  try {
    program.parse([...argv], { from: 'user' })
  } catch (error) {
    if (error instanceof HelpShown) return 'help'
    if (error instanceof UsageError) return 'usage error'
    throw error
  }
  return invocation
}

/** A small seeded generator, so a failure names a case that comes back. */
function random(seed: number) {
  let s = seed >>> 0
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0
    return s / 2 ** 32
  }
}

const GLOBAL_WORDS = [
  ['--dir', '/tmp/root'],
  ['--store', 's3://b/p'],
  ['--cwd', 'proj'],
  ['--key-file', 'k.key'],
  ['--allow-outside'],
  ['--json'],
  ['-q'],
  ['--quiet'],
  ['--no-color'],
  ['--no-auto-prune'],
]
const ODD_WORDS = [
  ['--'],
  ['-'],
  ['-h'],
  ['--help'],
  ['-v'],
  ['--version'],
  ['--bogus'],
  ['--dir=/x'],
  ['-qv'],
  ['--color'],
  ['--dir'],
  ['--json', '--dir'],
  ['help'],
  ['-1'],
]
const OPERANDS = ['p-1', 'a.js', 'node_modules/x/y.js', 'generate', 'bad/uuid', '30d']

function commandWords(name: string, pick: () => number): string[][] {
  const spec = COMMANDS[name as keyof typeof COMMANDS]
  const words: string[][] = OPERANDS.map((o) => [o])
  for (const { flags } of spec.options ?? []) {
    const long = flags.split(/[ ,]+/).find((w) => w.startsWith('--')) as string
    words.push(flags.includes('<') ? [long, pick() < 0.8 ? '2GB' : '-5'] : [long])
  }
  return words
}

describe('parseTypical reads a line as commander does, or leaves it to commander', () => {
  it('agrees with commander on generated lines, and never takes one commander refuses', async () => {
    const pick = random(15)
    const choose = <T>(xs: readonly T[]): T => xs[Math.floor(pick() * xs.length)] as T
    let taken = 0
    for (let n = 0; n < 1500; n++) {
      const name = choose([...COMMAND_NAMES, 'frobnicate'])
      const words = name === 'frobnicate' ? [['p-1']] : commandWords(name, pick)
      const argv: string[] = []
      const before = Math.floor(pick() * 3)
      for (let i = 0; i < before; i++) argv.push(...choose(GLOBAL_WORDS))
      argv.push(name)
      const after = Math.floor(pick() * 5)
      for (let i = 0; i < after; i++) {
        const r = pick()
        argv.push(
          ...(r < 0.15 ? choose(GLOBAL_WORDS) : r < 0.25 ? choose(ODD_WORDS) : choose(words)),
        )
      }
      const typical = parseTypical(argv)
      if (typical === undefined) continue
      taken++
      expect(await viaCommander(argv), JSON.stringify(argv)).toEqual(typical)
    }
    // Most generated lines are ordinary ones: the fast path must be taking them.
    expect(taken).toBeGreaterThan(300)
  })

  it('takes the typical lines, with the usage commander would print', async () => {
    const lines = [
      ['list'],
      ['--dir', '/r', 'list'],
      ['list', '--json'],
      ['list', 'p-1'],
      ['status', 'p-1'],
      ['--cwd', 'proj', 'status', 'p-1', '--no-color'],
      ['backup', 'p-1', 'a.js', 'b.js', 'c.js'],
      ['--dir', '/r', '--no-auto-prune', 'backup', 'p-1', '--overwrite', 'a.js'],
      ['backup', '--break-links', 'p-1', 'a.js', '-q'],
      ['restore', 'p-1', '--dry-run', '--no-atomic', '--force'],
      ['restore', 'p-1', 'a.js'],
      ['info', 'p-1', 'a.js'],
      ['diff', 'p-1', 'a.js'],
      ['cleanup', 'p-1', 'p-2'],
      ['prune', '--older-than', '30d', '--max-size', '1GB', '--keep-last', '3', '--dry-run'],
      ['verify'],
      ['gc', '--force'],
      ['undo', 'p-1'],
      ['recover', 'p-1'],
      ['record', 'p-1'],
      ['key', 'generate'],
      ['--store', 's3://b/p', 'migrate-manifests', '--dry-run'],
    ]
    for (const argv of lines) {
      const typical = parseTypical(argv)
      expect(typical, JSON.stringify(argv)).toBeDefined()
      expect(await viaCommander(argv), JSON.stringify(argv)).toEqual(typical)
    }
  })

  it('leaves help, the version and every mistake to commander', () => {
    const lines = [
      [],
      ['--help'],
      ['help'],
      ['help', 'list'],
      ['list', '--help'],
      ['-h'],
      ['--version'],
      ['--json', '--version'],
      ['frobnicate'],
      ['backup', 'p-1'],
      ['list', 'a', 'b'],
      ['list', '--bogus'],
      ['key', 'bogus'],
      ['--dir'],
      ['--dir', '--json', 'list'],
      ['prune', '--older-than'],
      ['--dir=/r', 'list'],
      ['-qv', 'list'],
      ['list', '--', 'p-1'],
      ['backup', 'p-1', '-'],
    ]
    for (const argv of lines) expect(parseTypical(argv), JSON.stringify(argv)).toBeUndefined()
  })
})
