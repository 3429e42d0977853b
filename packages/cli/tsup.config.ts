import { defineConfig } from 'tsup'
import { baseOptions } from '../../tsup.base.js'

export default defineConfig({
  ...baseOptions,
  // The library, the bin, and the command line (cli.ts) each in one file. Code splitting cut the
  // command line into a dozen chunks, each one more module for node to resolve and load at every
  // run; the whole command line in one file costs less. bin.js stays small for `--version` and
  // loads dist/cli.js as it is (external); what only some runs need (commander, cli-progress,
  // diff, store-cacache, store-s3) is imported where it is used.
  entry: ['src/index.ts', 'src/bin.ts', 'src/cli.ts'],
  splitting: false,
  external: ['./cli.js'],
  dts: { entry: 'src/index.ts' },
})
