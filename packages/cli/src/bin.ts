#!/usr/bin/env node
import pkg from '../package.json' with { type: 'json' }

const argv = process.argv.slice(2)
// `patch-backup --version` alone answers before the parser (commander) loads: scripts call it
// often and it should cost little more than starting node. Any other line goes to the parser,
// which knows --version too.
if (argv.length === 1 && (argv[0] === '--version' || argv[0] === '-v')) {
  process.stdout.write(`${pkg.version}\n`)
} else {
  const { main } = await import('./cli.js')
  process.exitCode = await main(argv, { stdout: process.stdout, stderr: process.stderr })
}
