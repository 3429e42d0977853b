import { defineConfig } from 'tsup'
import { baseOptions } from '../../tsup.base.js'

export default defineConfig({
  ...baseOptions,
  entry: ['src/index.ts', 'src/bin.ts'],
  dts: { entry: 'src/index.ts' },
})
