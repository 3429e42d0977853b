import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'

const exec = promisify(execFile)
const demo = fileURLToPath(new URL('../../../scripts/demo.mjs', import.meta.url))

// The README's first command ends in `pnpm demo`: what a newcomer runs first must keep working.
describe('the demo (pnpm demo)', () => {
  it('runs the built patch-backup command through every step, each check passing', async () => {
    const { stdout } = await exec(process.execPath, [demo], { encoding: 'utf8' })
    for (const command of ['backup', 'record', 'status', 'restore', 'undo'])
      expect(stdout).toContain(`$ patch-backup ${command} demo-patch-001`)
    expect(stdout).toMatch(/Restored \d+ files? of patch demo-patch-001/)
    expect(stdout).toContain('Undid the last restore of patch demo-patch-001')
    expect(stdout).not.toContain('FAILED')
    expect(stdout).toMatch(/demo ok/)
  })
})
