import { defineConfig } from 'tsup'
import { baseOptions } from '../../tsup.base.js'

export default defineConfig(baseOptions)
