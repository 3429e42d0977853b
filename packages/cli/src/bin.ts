#!/usr/bin/env node
import pkg from '../package.json' with { type: 'json' }

const { version } = pkg

const HELP = `patch-backup ${version}

Back up files before a patch rewrites them; restore them byte for byte.

Usage: patch-backup <command> [options]

Options:
  --version  Print the version
  --help     Print this help
`

const args = process.argv.slice(2)
if (args.includes('--version') || args.includes('-v')) {
  process.stdout.write(`${version}\n`)
} else if (args.length === 0 || args.includes('--help') || args.includes('-h')) {
  process.stdout.write(HELP)
} else {
  process.stderr.write(`patch-backup: unknown command ${JSON.stringify(args[0])}\n\n${HELP}`)
  process.exitCode = 2
}
