import { randomBytes } from 'node:crypto'
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { isCompressionSupported } from '@patch-backup/core'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { formatBytes } from '../src/output/bytes.js'
import { cleanEnv, json, type Sandbox, sandbox } from './helpers.js'

const A = 'node_modules/a/index.js'
const B = 'node_modules/b/index.js'
const COMPRESSIBLE = 'module.exports = function add(a, b) { return a + b }\n'.repeat(200)
const DAY = 86_400_000
const SIZE_A = formatBytes(COMPRESSIBLE.length).replace('.', '\\.')

interface PruneJson {
  dryRun: boolean
  removed: { uuid: string; files: number; bytes: number; reason: string }[]
  reclaimedBytes: number
  remainingPatches: number
}

let box: Sandbox
beforeEach(async () => {
  box = await sandbox({ [A]: COMPRESSIBLE, [B]: 'beta\n' })
})
afterEach(() => box.remove())

async function config(value: unknown) {
  await mkdir(box.store, { recursive: true })
  await writeFile(path.join(box.store, 'patch-backup.config.json'), JSON.stringify(value))
}
const manifestFile = (uuid: string) => path.join(box.store, '_patches', 'manifests', `${uuid}.json`)

/** Moves a patch's date back, as if it had been backed up `days` ago. */
async function age(uuid: string, days: number) {
  const file = manifestFile(uuid)
  const manifest = JSON.parse(await readFile(file, 'utf8')) as { patchedAt: string }
  manifest.patchedAt = new Date(Date.now() - days * DAY).toISOString()
  await writeFile(file, JSON.stringify(manifest))
}

describe('prune', () => {
  beforeEach(async () => {
    expect((await box.cli(['backup', 'old', A])).code).toBe(0)
    expect((await box.cli(['backup', 'new', B])).code).toBe(0)
    await age('old', 40)
  })

  it('--dry-run lists what would go and removes nothing', async () => {
    const r = await box.cli(['prune', '--older-than', '30d', '--dry-run'])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toContain('Dry run: would remove 1 patch:')
    expect(r.stdout).toMatch(new RegExp(`old\\s+40d\\s+1\\s+${SIZE_A}\\s+${SIZE_A}\\s+older-than`))
    expect(r.stdout).toContain(`Would reclaim ${formatBytes(COMPRESSIBLE.length)}`)
    expect(r.stdout).toContain('Nothing was removed.')
    const j = json<PruneJson>(
      await box.cli(['prune', '--older-than', '30d', '--dry-run', '--json']),
    )
    expect(j.dryRun).toBe(true)
    expect(j.removed.map((p) => p.uuid)).toEqual(['old'])
    expect(j.reclaimedBytes).toBe(COMPRESSIBLE.length)
    const list = json<{ patches: { uuid: string }[] }>(await box.cli(['list', '--json']))
    expect(list.patches.map((p) => p.uuid).sort()).toEqual(['new', 'old'])
    expect((await box.cli(['restore', 'old', '--json'])).code).toBe(0)
  })

  it('--older-than removes the old patch and reports the bytes reclaimed', async () => {
    const j = json<PruneJson>(await box.cli(['prune', '--older-than', '30d', '--json']))
    expect(j.dryRun).toBe(false)
    expect(j.removed).toMatchObject([
      { uuid: 'old', files: 1, bytes: COMPRESSIBLE.length, reason: 'older-than' },
    ])
    expect(j.reclaimedBytes).toBe(COMPRESSIBLE.length)
    expect(j.remainingPatches).toBe(1)
    expect(await readdir(path.join(box.store, '_patches', 'manifests'))).toEqual(['new.json'])
    const again = await box.cli(['prune', '--older-than', '30d'])
    expect(again.code).toBe(0)
    expect(again.stdout).toBe('Nothing to prune: 1 patch (5 B of distinct content) kept.\n')
  })

  it('human output: a table of what was removed, then the total', async () => {
    const r = await box.cli(['prune', '--keep-last', '1'])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toContain('Removed 1 patch:')
    expect(r.stdout).toMatch(/PATCH\s+AGE\s+FILES\s+ORIGINAL SIZE\s+FREES\s+REASON/)
    expect(r.stdout).toMatch(new RegExp(`old\\s+40d\\s+1\\s+${SIZE_A}\\s+${SIZE_A}\\s+keep-last`))
    expect(r.stdout).toContain(
      `Reclaimed ${formatBytes(COMPRESSIBLE.length)}; 1 patch (5 B of distinct content) kept.`,
    )
  })

  it('a bad duration or size, or no rule, is a usage error (exit 2)', async () => {
    for (const args of [
      ['--older-than', 'soon'],
      ['--max-size', 'lots'],
      ['--max-patch-size', 'big'],
      ['--keep-last', 'two'],
    ]) {
      const r = await box.cli(['prune', ...args])
      expect(r.code, args.join(' ')).toBe(2)
      expect(r.stderr).toContain(`error: ${args[0]}: `)
      expect(r.stderr).toContain('Usage: patch-backup prune [options]')
    }
    const none = await box.cli(['prune', '--json'])
    expect(none.code).toBe(2)
    expect(none.stderr).toContain('prune needs a rule')
    expect(json<{ error: { code: string } }>(none).error.code).toBe('USAGE_ERROR')
    expect((await box.cli(['list', '--json'])).stdout).toContain('"old"')
  })
})

// The spawned bin runs on this test's Node: CI runs this file on 20 (no zstd in zlib), 22 and 24.
const zstdHere = isCompressionSupported('zstd')
const algorithms = (['gzip', 'brotli', 'zstd'] as const).filter(isCompressionSupported)

describe('config: compression', () => {
  it.each(algorithms)(
    '%s: backup and restore round trip, info shows the stored size',
    async (algorithm) => {
      await config({ compression: { algorithm } })
      expect((await box.cli(['backup', 'p', A, B])).code).toBe(0)
      const fileInfo = json<{
        backup: { size: number; storedSize: number }
        policy: { compression: { algorithm: string }; encryption: null }
      }>(await box.cli(['info', 'p', A, '--json']))
      expect(fileInfo.backup.size).toBe(COMPRESSIBLE.length)
      expect(fileInfo.backup.storedSize).toBeLessThan(fileInfo.backup.size)
      expect(fileInfo.policy.compression.algorithm).toBe(algorithm)
      expect(fileInfo.policy.encryption).toBeNull()
      const patchInfo = json<{ size: number; storedSize: number }>(
        await box.cli(['info', 'p', '--json']),
      )
      expect(patchInfo.storedSize).toBeLessThan(patchInfo.size)
      const human = await box.cli(['info', 'p', A])
      expect(human.stdout).toMatch(/stored size\s+\d+ B/)
      expect(human.stdout).toMatch(new RegExp(`compression\\s+${algorithm}`))
      expect(human.stdout).toMatch(/encryption\s+off/)

      await box.write(A, 'changed\n')
      expect((await box.cli(['restore', 'p'])).code).toBe(0)
      expect(await readFile(path.join(box.project, A), 'utf8')).toBe(COMPRESSIBLE)

      // Compression turned off again: what was compressed stays readable.
      await config({})
      await box.write(A, 'changed again\n')
      expect((await box.cli(['verify', 'p'])).code).toBe(0)
      expect((await box.cli(['restore', 'p', A])).code).toBe(0)
      expect(await readFile(path.join(box.project, A), 'utf8')).toBe(COMPRESSIBLE)
    },
  )

  it.skipIf(zstdHere)(
    'zstd where zlib has none: UNSUPPORTED naming the Node needed, nothing written',
    async () => {
      await config({ compression: 'zstd' })
      const r = await box.cli(['backup', 'p', A, '--json'])
      expect(r.code).toBe(1)
      const { error } = json<{ error: { code: string; message: string } }>(r)
      expect(error.code).toBe('UNSUPPORTED')
      expect(error.message).toContain(`zstd on Node ${process.versions.node}`)
      expect(error.message).toContain('22.15')
      const human = await box.cli(['backup', 'p', A])
      expect(human.code).toBe(1)
      expect(human.stderr).toContain("Use 'gzip' or 'brotli', or run a newer Node.")
      await config({})
      expect(json<{ patches: unknown[] }>(await box.cli(['list', '--json'])).patches).toEqual([])
    },
  )

  it('without a config, info reports no policy in force', async () => {
    expect((await box.cli(['backup', 'p', B])).code).toBe(0)
    const r = await box.cli(['info', 'p'])
    expect(r.stdout).toMatch(/compression\s+off/)
    expect(r.stdout).toMatch(/config\s+none/)
    expect(r.stdout).not.toContain('stored size')
  })
})

describe('config: encryption', () => {
  const key = randomBytes(32).toString('base64')
  const other = randomBytes(32).toString('base64')
  const withKey = (k: string) => ({ env: cleanEnv({ PATCH_BACKUP_KEY: k }) })

  it('PATCH_BACKUP_KEY: round trip; a different key fails DECRYPT_FAILED and leaves the file alone', async () => {
    await config({ encryption: { keySource: 'env' } })
    expect((await box.cli(['backup', 'p', A], withKey(key))).code).toBe(0)
    const info = json<{ policy: { encryption: { keySource: string; keyId: string } } }>(
      await box.cli(['info', 'p', '--json'], withKey(key)),
    )
    expect(info.policy.encryption).toMatchObject({ keySource: 'env' })
    expect(info.policy.encryption.keyId).toMatch(/^[0-9a-f]{16}$/)
    expect((await box.cli(['info', 'p'], withKey(key))).stdout).toContain(
      `key id ${info.policy.encryption.keyId}`,
    )

    await box.write(A, 'patched\n')
    const wrong = await box.cli(['restore', 'p', A, '--json'], withKey(other))
    expect(wrong.code).toBe(1)
    expect(wrong.stdout).toContain('DECRYPT_FAILED')
    expect(await readFile(path.join(box.project, A), 'utf8')).toBe('patched\n')

    // No key at all: a restore cannot start, but list and info still work.
    expect((await box.cli(['restore', 'p', '--json'])).stdout).toContain('INVALID_KEY')
    expect((await box.cli(['list'])).code).toBe(0)

    const ok = await box.cli(['restore', 'p'], withKey(key))
    expect(ok.code, ok.stderr).toBe(0)
    expect(await readFile(path.join(box.project, A), 'utf8')).toBe(COMPRESSIBLE)
  })

  it('--key-file gives the key for the run', async () => {
    const keyFile = path.join(box.project, 'backup.key')
    await writeFile(keyFile, `${key}\n`)
    await config({ compression: 'brotli', encryption: { keySource: 'env' } })
    expect((await box.cli(['--key-file', keyFile, 'backup', 'p', A])).code).toBe(0)
    await box.write(A, 'patched\n')
    // The env key is another one: the file wins.
    const r = await box.cli(['restore', 'p', '--key-file', 'backup.key'], withKey(other))
    expect(r.code, r.stderr).toBe(0)
    expect(await readFile(path.join(box.project, A), 'utf8')).toBe(COMPRESSIBLE)
  })

  it('key generate prints a new base64 key that works as PATCH_BACKUP_KEY', async () => {
    const r = await box.cli(['key', 'generate'])
    expect(r.code).toBe(0)
    const generated = r.stdout.trim()
    expect(Buffer.from(generated, 'base64')).toHaveLength(32)
    const j = json<{ key: string; keyId: string }>(await box.cli(['key', 'generate', '--json']))
    expect(j.key).not.toBe(generated)
    await config({ encryption: { keySource: 'env' } })
    expect((await box.cli(['backup', 'p', B], withKey(generated))).code).toBe(0)
    expect((await box.cli(['verify'], withKey(generated))).code).toBe(0)
  })
})

describe('config: errors and limits', () => {
  it('an invalid config fails with INVALID_CONFIG naming the file', async () => {
    await config({ compression: { algorithm: 'lzma' } })
    const r = await box.cli(['backup', 'p', A, '--json'])
    expect(r.code).toBe(1)
    const error = json<{ error: { code: string; message: string } }>(r).error
    expect(error.code).toBe('INVALID_CONFIG')
    expect(error.message).toContain(path.join(box.store, 'patch-backup.config.json'))
    expect(error.message).toContain('compression.algorithm')
    await writeFile(path.join(box.store, 'patch-backup.config.json'), '{ nope')
    const human = await box.cli(['list'])
    expect(human.code).toBe(1)
    expect(human.stderr).toContain('patch-backup.config.json is not valid JSON')
  })

  it('a size limit refuses a backup with QUOTA_EXCEEDED and writes nothing', async () => {
    await config({ limits: { maxPatchBytes: '1KB' } })
    const r = await box.cli(['backup', 'p', A, '--json'])
    expect(r.code).toBe(1)
    expect(json<{ errors: { code: string }[] }>(r).errors.map((e) => e.code)).toEqual([
      'QUOTA_EXCEEDED',
    ])
    expect(json<{ patches: unknown[] }>(await box.cli(['list', '--json'])).patches).toEqual([])
    const human = await box.cli(['backup', 'p', A])
    expect(human.code).toBe(1)
    expect(human.stderr).toContain('QUOTA_EXCEEDED')
    expect(json<{ size: number }>(await box.cli(['backup', 'p', B, '--json'])).size).toBe(5)
  })

  it('automatic retention from the config runs after a backup, unless --no-auto-prune', async () => {
    await config({ retention: { olderThan: '30d', interval: '0ms' } })
    expect((await box.cli(['backup', 'old', B])).code).toBe(0)
    await age('old', 40)
    expect((await box.cli(['--no-auto-prune', 'backup', 'p1', A])).code).toBe(0)
    expect((await box.cli(['list', '--json'])).stdout).toContain('"old"')
    expect((await box.cli(['backup', 'p2', A])).code).toBe(0)
    expect((await box.cli(['list', '--json'])).stdout).not.toContain('"old"')
  })
})
