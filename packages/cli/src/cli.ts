// The command line's entry, built into one file (dist/cli.js, see tsup.config.ts): bin.ts loads
// it for everything but a bare --version.
export { EXIT_FAILED, EXIT_OK, EXIT_USAGE, type MainIo, main } from './cli/main.js'
