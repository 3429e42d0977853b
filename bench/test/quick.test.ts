import { fileURLToPath } from 'node:url'
import { runNode } from '@patch-backup/conformance'
import { expect, it } from 'vitest'

const run = fileURLToPath(new URL('../run.mjs', import.meta.url))

interface Check {
  name: string
  value: number
  met: boolean
  gross: boolean
  grossLimit?: string
}

/**
 * `pnpm bench --quick` as CI runs it: every scenario on small sizes, failing only on a gross
 * regression (limits far from the targets, confirmed by re-measuring, so load cannot trip them).
 */
it('runs the quick benchmark with no gross regression', { timeout: 240_000 }, async () => {
  const { code, stdout, stderr } = await runNode(run, ['--quick', '--json'])
  const report = JSON.parse(stdout) as { rows: unknown[]; checks: Check[] }
  const gross = report.checks
    .filter((c) => c.gross)
    .map((c) => `${c.name}: ${c.value} (limit ${c.grossLimit})`)
  expect(gross, stderr).toEqual([])
  expect(code, stderr).toBe(0)
  expect(report.rows.length).toBeGreaterThan(10)
  expect(report.checks.some((c) => c.name.includes('frees its own bytes'))).toBe(true)
})
