import { execFileSync } from 'node:child_process'
import { describe, expect, it } from 'vitest'

// .ci/run runs every test once per Node line and names the version it meant in
// PATCH_BACKUP_EXPECT_NODE. A test run that silently fell back to another Node (an earlier one on
// PATH, say) would prove nothing about that line: this fails it instead.
const expected = process.env.PATCH_BACKUP_EXPECT_NODE

describe.runIf(expected)('the Node line CI asked for', () => {
  it('runs the tests', () => {
    expect(process.versions.node).toBe(expected)
  })

  it('runs the child processes that tests spawn as `node`', () => {
    expect(execFileSync('node', ['--version'], { encoding: 'utf8' }).trim()).toBe(`v${expected}`)
  })
})
