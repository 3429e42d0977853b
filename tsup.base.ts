import type { Options } from 'tsup'

/** What every package builds alike: ESM for Node 20, with types and source maps. */
export const baseOptions = {
  entry: ['src/index.ts'],
  format: ['esm'],
  dts: true,
  clean: true,
  target: 'node20',
  sourcemap: true,
} satisfies Options
