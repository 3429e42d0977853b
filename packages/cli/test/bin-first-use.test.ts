import { fileURLToPath } from 'node:url'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { json, run, type Sandbox, sandbox } from './helpers.js'
import { cacheFixtureHooks } from './hooks.js'

// What a new user tripped on (issue 15), each as the user met it: the built bin, spawned.
const A = 'node_modules/lodash/index.js'
const B = 'node_modules/lodash/template.js'

interface FileErrorJson {
  path: string
  code: string
  message: string
}

let box: Sandbox
beforeEach(async () => {
  box = await sandbox({ [A]: 'module.exports = 1\n', [B]: 'eval(s)\n' })
})
afterEach(() => box.remove())

const withoutStoreS3 = fileURLToPath(new URL('./fixtures/without-store-s3.mjs', import.meta.url))

describe('exit codes and words (item 10)', () => {
  it('help for an unknown command says so, without the whole help (exit 2)', async () => {
    const r = await run(['help', 'bogus'])
    expect(r.code).toBe(2)
    expect(r.stdout).toBe('')
    expect(r.stderr).toMatch(/^error: unknown command 'bogus'/)
    expect(r.stderr).not.toContain('Commands:')
    expect(r.stderr).not.toContain('missing command')
    expect((await run(['--json', 'help', 'bogus'])).stdout).toContain('USAGE_ERROR')
  })

  it('a malformed uuid is a usage error: exit 2, the usage, INVALID_UUID in JSON', async () => {
    const r = await box.cli(['restore', 'bad/uuid'])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/^error: Invalid patch uuid "bad\/uuid"/)
    expect(r.stderr).toContain('Usage: patch-backup restore')
    const j = await box.cli(['restore', 'bad/uuid', '--json'])
    expect(j.code).toBe(2)
    expect(json(j)).toEqual({ error: { code: 'INVALID_UUID', message: expect.any(String) } })
  })

  it('with --store s3://… and no store-s3 installed, every command says what to install', async () => {
    const nodeArgs = ['--import', withoutStoreS3]
    const remote = ['--store', 's3://bucket/prefix']
    // The manifests live in the bucket too, so list, info and status need it as much as backup.
    for (const args of [['backup', 'fix-2', A], ['list'], ['info', 'fix-1'], ['status', 'fix-1']]) {
      const r = await box.cli([...remote, '--json', ...args], { nodeArgs })
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(1)
      expect(json(r), args.join(' ')).toMatchObject({ error: { code: 'STORE_UNAVAILABLE' } })
    }
  })

  it('restore says "already original" for the files its dry run called so, not "restored"', async () => {
    expect((await box.cli(['backup', 'fix-1', A, B])).code).toBe(0)
    await box.write(B, 'patched\n')
    const dry = await box.cli(['restore', 'fix-1', '--dry-run'])
    expect(dry.stdout).toMatch(/1 would be restored, 1 already original/)
    const r = await box.cli(['restore', 'fix-1'])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toMatch(
      /^Restored 1 file of patch fix-1 \(all or nothing\); 1 already original/,
    )
    expect(r.stdout).toMatch(new RegExp(`already original\\s+${A}\\n`))
    expect(r.stdout).toMatch(new RegExp(`restored\\s+${B}\\n`))
    await box.write(B, 'patched again\n')
    const j = json<{ restored: string[]; unchanged: string[] }>(
      await box.cli(['restore', 'fix-1', '--json']),
    )
    expect(j.restored).toEqual([A, B])
    expect(j.unchanged).toEqual([A])
  })

  it('the JSON DRIFTED message names the --force option', async () => {
    expect((await box.cli(['backup', 'fix-1', A])).code).toBe(0)
    await box.write(A, 'patched\n')
    expect((await box.cli(['record', 'fix-1'])).code).toBe(0)
    await box.write(A, 'reinstalled\n')
    const r = await box.cli(['restore', 'fix-1', '--json'])
    expect(r.code).toBe(1)
    const [error] = json<{ errors: FileErrorJson[] }>(r).errors
    expect(error?.code).toBe('DRIFTED')
    expect(error?.message).toContain('--force')
    expect(error?.message).not.toMatch(/with force\b/)
  })

  it("verify's messages do not tell the reader to run verify", async () => {
    const backup = json<{ files: Record<string, { integrity: string }> }>(
      await box.cli(['backup', 'fix-1', A, '--json']),
    )
    await cacheFixtureHooks(box.cache).corrupt(backup.files[A]?.integrity ?? '')
    const r = await box.cli(['verify', 'fix-1', '--json'])
    expect(r.code).toBe(1)
    const { problems } = json<{ problems: { code: string; message: string }[] }>(r)
    expect(problems[0]?.code).toBe('INTEGRITY_MISMATCH')
    expect(problems[0]?.message).not.toContain('patch-backup verify')
  })

  it('an empty list names the backup root it looked in', async () => {
    const r = await box.cli(['list'])
    expect(r.code).toBe(0)
    expect(r.stdout).toBe(
      `No patches in ${box.store} (another root? give --dir or set PATCH_BACKUP_DIR).\n`,
    )
    expect(json(await box.cli(['list', '--json']))).toEqual({ root: box.store, patches: [] })
  })
})

describe('cleanup checks every uuid first (item 6)', () => {
  it('removes nothing when one uuid names no patch, and says so with a hint', async () => {
    expect((await box.cli(['backup', 'c1', A])).code).toBe(0)
    const r = await box.cli(['cleanup', 'c1', 'nope'])
    expect(r.code).toBe(1)
    expect(r.stdout).toBe('')
    expect(r.stderr).toBe(
      `error: No patch nope in ${box.store}, so nothing was removed. Run 'patch-backup list' to see the patches it has, or check --dir.\n`,
    )
    expect((await box.cli(['list', 'c1'])).code).toBe(0)
    const j = await box.cli(['cleanup', 'c1', 'nope', 'nada', '--json'])
    expect(j.code).toBe(1)
    expect(json(j)).toMatchObject({ error: { code: 'PATCH_NOT_FOUND' } })
    expect(json<{ error: { message: string } }>(j).error.message).toMatch(/^No patches nope, nada/)
    expect((await box.cli(['list', 'c1'])).code).toBe(0)
  })
})

describe('keep-first is not silent (item 4)', () => {
  it('backup of a file patched since its backup says the first was kept and points at --overwrite', async () => {
    const first = json<{ files: Record<string, { integrity: string }> }>(
      await box.cli(['backup', 'fix-1', B, '--json']),
    )
    const kept = first.files[B]?.integrity ?? ''
    await box.write(B, 'patched\n')
    const r = await box.cli(['backup', 'fix-1', A, B])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toMatch(
      /^Backed up 1 file under patch fix-1 \(.*\); 1 already backed up, first backup kept\n/,
    )
    expect(r.stdout).toMatch(new RegExp(`${B}.*kept the first backup; the file differs now\\n`))
    expect(r.stderr).toMatch(
      new RegExp(
        `^warning: ${B} already had a backup in patch fix-1; it was kept \\(the first backup wins\\), and the file differs from it now`,
      ),
    )
    expect(r.stderr).toContain('--overwrite')
    const j = json<{
      kept: { path: string; differs: boolean; backupIntegrity: string; currentIntegrity: string }[]
    }>(await box.cli(['backup', 'fix-1', A, B, '--json']))
    expect(j.kept).toEqual([
      {
        path: A,
        backupIntegrity: expect.any(String),
        currentIntegrity: expect.any(String),
        differs: false,
      },
      {
        path: B,
        backupIntegrity: kept,
        currentIntegrity: expect.stringMatching(/^sha256-/),
        differs: true,
      },
    ])
    expect(j.kept[1]?.currentIntegrity).not.toBe(kept)
    // --overwrite takes the current bytes, and keeps nothing.
    const over = json<{ kept: unknown[] }>(
      await box.cli(['backup', 'fix-1', B, '--overwrite', '--json']),
    )
    expect(over.kept).toEqual([])
  })
})

describe('a directory argument (item 8)', () => {
  it('backs up every regular file under it, recursively, whether written dir or dir/', async () => {
    await box.write('node_modules/lodash/fp/map.js', 'map\n')
    for (const [uuid, arg] of [
      ['d-1', 'node_modules/lodash'],
      ['d-2', 'node_modules/lodash/'],
      ['d-3', './node_modules//lodash/'],
    ] as const) {
      const r = await box.cli(['backup', uuid, arg])
      expect(r.code, `${arg}: ${r.stderr}`).toBe(0)
      expect(r.stdout).toMatch(
        new RegExp(
          `^Backed up 3 files under patch ${uuid} \\(.*\\) from ${arg.replace(/[./]/g, '\\$&')} \\(3 files\\)\\n`,
        ),
      )
      const listed = json<{ files: { path: string }[] }>(await box.cli(['list', uuid, '--json']))
      expect(listed.files.map((f) => f.path)).toEqual(['node_modules/lodash/fp/map.js', A, B])
    }
    const j = json<{ directories: unknown[] }>(
      await box.cli(['backup', 'd-4', 'node_modules/lodash', '--json']),
    )
    expect(j.directories).toEqual([{ path: 'node_modules/lodash', files: 3 }])
  })

  it('an empty directory is one clear error', async () => {
    await box.write('node_modules/empty/sub/.keep', '')
    const { rm } = await import('node:fs/promises')
    await rm(`${box.project}/node_modules/empty/sub/.keep`)
    const r = await box.cli(['backup', 'd-1', 'node_modules/empty', '--json'])
    expect(r.code).toBe(1)
    expect(json(r)).toMatchObject({
      failed: ['node_modules/empty'],
      errors: [
        {
          path: 'node_modules/empty',
          code: 'SOURCE_UNREADABLE',
          message: expect.stringContaining('no regular files'),
        },
      ],
    })
  })
})

describe('sizes mean one thing per column (item 7)', () => {
  it('list and prune agree on a patch size, and prune shows what removing it frees apart', async () => {
    const content = 'x'.repeat(1600)
    await box.write(A, content)
    expect((await box.cli(['backup', 't1', A])).code).toBe(0)
    expect((await box.cli(['backup', 't2', A])).code).toBe(0) // the same bytes: shared
    expect((await box.cli(['backup', 't3', B])).code).toBe(0)
    const list = await box.cli(['list'])
    expect(list.stdout).toMatch(/^PATCH\s+FILES\s+ORIGINAL SIZE\s+PATCHED AT\n/)
    expect(list.stdout).toMatch(/t1\s+1\s+1\.6 KiB\s/)
    const r = await box.cli(['prune', '--keep-last', '2', '--dry-run'])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toMatch(/PATCH\s+AGE\s+FILES\s+ORIGINAL SIZE\s+FREES\s+REASON\n/)
    // t1's bytes stay with t2: removing it frees nothing, though it holds 1.6 KiB like list says.
    expect(r.stdout).toMatch(/t1\s+\S+\s+1\s+1\.6 KiB\s+0 B\s+keep-last\n/)
    const j = json<{ removed: { uuid: string; size: number; bytes: number }[] }>(
      await box.cli(['prune', '--keep-last', '2', '--dry-run', '--json']),
    )
    expect(j.removed).toMatchObject([{ uuid: 't1', size: 1600, bytes: 0 }])
  })
})

describe('every state a target can be in (item 1)', () => {
  it('a directory where a file was: status says so, the dry run and the run fail alike, naming it', async () => {
    expect((await box.cli(['backup', 'fix-1', A, B])).code).toBe(0)
    const { rm, mkdir } = await import('node:fs/promises')
    await rm(`${box.project}/${A}`)
    await mkdir(`${box.project}/${A}`)
    await box.write(B, 'patched\n')
    const status = json<{ files: { path: string; state: string }[] }>(
      await box.cli(['status', 'fix-1', '--json']),
    )
    expect(status.files.map((f) => f.state)).toEqual(['directory', 'modified'])
    const human = await box.cli(['status', 'fix-1'])
    expect(human.stdout).toMatch(new RegExp(`directory\\s+${A}\\n`))

    const expected = {
      failed: [A],
      errors: [
        {
          path: A,
          code: 'TARGET_NOT_A_FILE',
          message: expect.stringContaining(`${box.project}/${A} is a directory`),
        },
      ],
    }
    const dry = await box.cli(['restore', 'fix-1', '--dry-run', '--json'])
    expect(dry.code).toBe(1)
    expect(json(dry)).toMatchObject(expected)
    const dryHuman = await box.cli(['restore', 'fix-1', '--dry-run'])
    expect(dryHuman.stdout).toMatch(/1 would be restored, 1 would fail/)
    expect(dryHuman.stderr).toContain('TARGET_NOT_A_FILE')

    const real = await box.cli(['restore', 'fix-1', '--json'])
    expect(real.code).toBe(1)
    expect(json(real)).toMatchObject({ ...expected, restored: [] })
    const loose = await box.cli(['restore', 'fix-1', '--no-atomic', '--json'])
    expect(loose.code).toBe(1)
    expect(json(loose)).toMatchObject({ ...expected, restored: [B] })

    const diff = await box.cli(['diff', 'fix-1', A, '--json'])
    expect(diff.code).toBe(1)
    expect(json(diff)).toMatchObject({ error: { code: 'TARGET_NOT_A_FILE' } })
  })

  it('a symlink is its own state, never read through; restore replaces the link', async () => {
    expect((await box.cli(['backup', 'fix-1', A])).code).toBe(0)
    const { rm, symlink, readFile, writeFile, lstat } = await import('node:fs/promises')
    const outside = `${box.project}/../outside.js`
    await writeFile(outside, 'module.exports = 1\n') // the backed-up bytes: read through, it looked original
    await rm(`${box.project}/${A}`)
    await symlink(outside, `${box.project}/${A}`)
    const status = json<{ files: { state: string; currentIntegrity?: string }[] }>(
      await box.cli(['status', 'fix-1', '--json']),
    )
    expect(status.files).toMatchObject([{ state: 'symlink' }])
    expect(status.files[0]?.currentIntegrity).toBeUndefined()
    const dry = json<{ files: { current: string; action: string }[] }>(
      await box.cli(['restore', 'fix-1', '--dry-run', '--json']),
    )
    expect(dry.files).toMatchObject([{ current: 'symlink', action: 'restore' }])
    const r = await box.cli(['restore', 'fix-1'])
    expect(r.code, r.stderr).toBe(0)
    expect((await lstat(`${box.project}/${A}`)).isSymbolicLink()).toBe(false)
    expect(await readFile(outside, 'utf8')).toBe('module.exports = 1\n')
  })

  it('a fifo is not-a-file: status does not hang on it, restore fails naming it', async () => {
    expect((await box.cli(['backup', 'fix-1', A])).code).toBe(0)
    const { rm } = await import('node:fs/promises')
    const { execFileSync } = await import('node:child_process')
    await rm(`${box.project}/${A}`)
    execFileSync('mkfifo', [`${box.project}/${A}`])
    const status = json<{ files: { state: string }[] }>(
      await box.cli(['status', 'fix-1', '--json']),
    )
    expect(status.files).toMatchObject([{ state: 'not-a-file' }])
    const r = await box.cli(['restore', 'fix-1', '--json'])
    expect(r.code).toBe(1)
    expect(json(r)).toMatchObject({
      errors: [{ path: A, code: 'TARGET_NOT_A_FILE', message: expect.stringContaining('a fifo') }],
    })
  })
})

describe('a mode-only change (item 9)', () => {
  it('status says mode-changed, and restore puts the recorded mode back', async () => {
    const { chmod, stat } = await import('node:fs/promises')
    const file = `${box.project}/${A}`
    await chmod(file, 0o755)
    expect((await box.cli(['backup', 'fix-1', A, B])).code).toBe(0)
    await chmod(file, 0o600)
    const status = json<{ files: { path: string; state: string }[] }>(
      await box.cli(['status', 'fix-1', '--json']),
    )
    expect(status.files).toMatchObject([{ path: A, state: 'mode-changed' }, { state: 'original' }])
    expect((await box.cli(['status', 'fix-1'])).stdout).toContain(
      'restore puts the recorded mode back',
    )
    const dry = json<{ files: { current: string; action: string }[] }>(
      await box.cli(['restore', 'fix-1', '--dry-run', '--json']),
    )
    expect(dry.files[0]).toMatchObject({ current: 'mode-changed', action: 'restore' })
    const r = await box.cli(['restore', 'fix-1'])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toMatch(new RegExp(`restored\\s+${A}\\n`))
    expect((await stat(file)).mode & 0o777).toBe(0o755)
    // File by file too.
    await chmod(file, 0o600)
    expect((await box.cli(['restore', 'fix-1', A])).code).toBe(0)
    expect((await stat(file)).mode & 0o777).toBe(0o755)
  })
})

describe('hardlinked files (item 5)', () => {
  it('backup and status say when a file has other links; --break-links gives it its own copy', async () => {
    const { link, stat, readFile } = await import('node:fs/promises')
    const store = `${box.project}/../pnpm-store-index.js`
    await link(`${box.project}/${A}`, store)
    const r = await box.cli(['backup', 'fix-1', A, B])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stderr).toMatch(/^warning: a file has other hard links .*writes into every link/)
    expect(r.stderr).toMatch(new RegExp(`${A}\\s+2 links\\n`))
    expect(r.stderr).toContain('--break-links')
    const info = json<{ backup: { links?: number } }>(await box.cli(['info', 'fix-1', A, '--json']))
    expect(info.backup.links).toBe(2)
    const status = await box.cli(['status', 'fix-1', '--json'])
    const files = json<{ files: { links?: number }[] }>(status).files
    expect(files.map((f) => f.links)).toEqual([2, undefined])
    expect((await box.cli(['status', 'fix-1'])).stdout).toMatch(
      new RegExp(`${A}\\s+2 hard links\\n[\\s\\S]*writes into every link`),
    )

    const broken = await box.cli(['backup', 'fix-2', A, '--break-links', '--json'])
    expect(broken.code, broken.stderr).toBe(0)
    expect(json<{ files: Record<string, unknown> }>(broken).files[A]).toMatchObject({
      links: 2,
      linksBroken: true,
    })
    expect((await stat(`${box.project}/${A}`)).nlink).toBe(1)
    expect((await stat(store)).nlink).toBe(1)
    expect(await readFile(`${box.project}/${A}`, 'utf8')).toBe('module.exports = 1\n')
    expect((await box.cli(['backup', 'fix-3', A])).stderr).toBe('')
  })
})

describe('undo after a forced file-by-file restore (item 3)', () => {
  it('puts back every file the restore replaced, not only the drifted ones', async () => {
    const C = 'node_modules/lodash/gone.js'
    await box.write(C, 'gone\n')
    expect((await box.cli(['backup', 'fix-1', A, B, C])).code).toBe(0)
    await box.write(A, 'patched a\n')
    await box.write(B, 'patched b\n')
    expect((await box.cli(['record', 'fix-1'])).code).toBe(0)
    await box.write(B, 'reinstalled b\n') // drifted
    const { rm, readFile, access } = await import('node:fs/promises')
    await rm(`${box.project}/${C}`) // missing
    const r = await box.cli(['restore', 'fix-1', '--no-atomic', '--force'])
    expect(r.code, r.stderr).toBe(0)
    const u = json<{ undone: string[]; removed: string[] }>(
      await box.cli(['undo', 'fix-1', '--json']),
    )
    expect(u.undone).toEqual([C, A, B])
    expect(u.removed).toEqual([C])
    expect(await readFile(`${box.project}/${A}`, 'utf8')).toBe('patched a\n')
    expect(await readFile(`${box.project}/${B}`, 'utf8')).toBe('reinstalled b\n')
    await expect(access(`${box.project}/${C}`)).rejects.toThrow()
  })
})

describe('undo snapshots are freed when they can no longer be used (item 2)', () => {
  /** Snapshot keys in the store, and content files no key references (gc leaves young ones). */
  const reclaimable = async () => {
    const { listIndexEntries } = await import('@patch-backup/store-cacache')
    const cachePath = `${box.store}/_cacache`
    let snapshotKeys = 0
    const referenced = new Set<string>()
    for await (const entry of listIndexEntries(cachePath)) {
      if (entry.key.includes(':snapshot-')) snapshotKeys++
      referenced.add(entry.integrity)
    }
    const { readdir } = await import('node:fs/promises')
    const contents = await readdir(`${cachePath}/content-v2/sha256`, { recursive: true })
    const { stat } = await import('node:fs/promises')
    let blobs = 0
    for (const name of contents) {
      if ((await stat(`${cachePath}/content-v2/sha256/${name}`)).isFile()) blobs++
    }
    return { snapshotKeys, unreferencedBlobs: blobs - referenced.size }
  }

  it('after undo, and when a newer forced restore replaces them, the store keeps none', async () => {
    expect((await box.cli(['backup', 'fix-1', A, B])).code).toBe(0)
    await box.write(A, 'patched a\n')
    await box.write(B, 'patched b\n')
    expect((await box.cli(['record', 'fix-1'])).code).toBe(0)
    // A forced restore over drifted files keeps snapshots; undo puts them back and frees them.
    await box.write(A, `drifted a ${'x'.repeat(4096)}\n`)
    await box.write(B, `drifted b ${'y'.repeat(4096)}\n`)
    expect((await box.cli(['restore', 'fix-1', '--force'])).code).toBe(0)
    expect((await box.cli(['undo', 'fix-1'])).code).toBe(0)
    expect(await reclaimable()).toEqual({ snapshotKeys: 0, unreferencedBlobs: 0 })
    // Two forced restores in a row: the second's snapshots replace the first's, which go.
    expect((await box.cli(['restore', 'fix-1', '--force'])).code).toBe(0)
    await box.write(A, `drifted again a ${'z'.repeat(4096)}\n`)
    expect((await box.cli(['restore', 'fix-1', '--force'])).code).toBe(0)
    // Only the last restore's snapshot of A is left (B was already original the second time).
    expect(await reclaimable()).toEqual({ snapshotKeys: 1, unreferencedBlobs: 0 })
    // And the last restore is still undoable.
    expect((await box.cli(['undo', 'fix-1'])).code).toBe(0)
    const { readFile } = await import('node:fs/promises')
    expect(await readFile(`${box.project}/${A}`, 'utf8')).toBe(
      `drifted again a ${'z'.repeat(4096)}\n`,
    )
  })
})
