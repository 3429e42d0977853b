import { readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { json, type Sandbox, sandbox } from './helpers.js'
import { cacheFixtureHooks } from './hooks.js'

// The restores the service makes all-or-nothing, drift-aware and undoable, as a user drives them.
const A = 'node_modules/lodash/index.js'
const B = 'node_modules/lodash/template.js'
const C = 'node_modules/minimist/index.js'
const ORIGINAL: Record<string, string> = {
  [A]: 'module.exports = 1\n',
  [B]: 'eval(s)\n',
  [C]: 'minimist\n',
}

interface FileErrorJson {
  path: string
  code: string
  message: string
}

interface RecordJson {
  uuid: string
  recorded: string[]
  failed: string[]
  errors: FileErrorJson[]
  files: { path: string; patchedIntegrity: string; patchedSize: number; unchanged: boolean }[]
}

interface StatusJson {
  uuid: string
  files: {
    path: string
    state: string
    size: number
    backupIntegrity: string
    patchedIntegrity?: string
    currentIntegrity?: string
  }[]
  counts: Record<string, number>
}

interface RestoreJson {
  uuid: string
  dryRun: boolean
  atomic: boolean
  restored: string[]
  failed: string[]
  errors: FileErrorJson[]
  rolledBack?: boolean
  drifted: { path: string; patchedIntegrity: string; currentIntegrity: string }[]
  files?: { path: string; current: string; action: string }[]
}

interface UndoJson {
  uuid: string
  undone: string[]
  removed: string[]
  failed: string[]
  errors: FileErrorJson[]
}

let box: Sandbox
beforeEach(async () => {
  box = await sandbox(ORIGINAL)
  expect((await box.cli(['backup', 'fix-1', A, B, C])).code).toBe(0)
})
afterEach(() => box.remove())

const read = (file: string) => readFile(path.join(box.project, file), 'utf8')
const readAll = async () =>
  Object.fromEntries(
    await Promise.all(
      Object.keys(ORIGINAL).map(async (f) => [f, await read(f).catch(() => null)] as const),
    ),
  )
const manifestFile = (uuid: string) => path.join(box.store, '_patches', 'manifests', `${uuid}.json`)

/** The patch: rewrites A and B (C is left alone), then records what it wrote. */
async function patchAndRecord() {
  await box.write(A, 'module.exports = 2 // patched\n')
  await box.write(B, 'safeEval(s) // patched\n')
  const r = await box.cli(['record', 'fix-1'])
  expect(r.code, r.stderr).toBe(0)
  return r
}

describe('record', () => {
  it('records the patched bytes, and status then tells patched from original', async () => {
    const r = await patchAndRecord()
    expect(r.stderr).toBe('')
    expect(r.stdout).toMatch(/^Recorded the patched bytes of 3 files of patch fix-1\n/)
    expect(r.stdout).toMatch(
      /node_modules\/minimist\/index\.js\s+sha256-\S+\s+unchanged by the patch\n/,
    )
    expect(r.stdout).toMatch(/node_modules\/lodash\/index\.js\s+sha256-\S+\n/)

    const human = await box.cli(['status', 'fix-1'])
    expect(human.code).toBe(0)
    expect(human.stdout).toBe(
      [
        'Patch fix-1: 3 files, 1 original, 2 patched',
        `  patched   ${A}`,
        `  patched   ${B}`,
        `  original  ${C}`,
        '',
      ].join('\n'),
    )
    const doc = json<StatusJson>(await box.cli(['status', 'fix-1', '--json']))
    expect(doc.counts).toEqual({
      original: 1,
      patched: 2,
      drifted: 0,
      modified: 0,
      'mode-changed': 0,
      missing: 0,
      directory: 0,
      symlink: 0,
      'not-a-file': 0,
      unreadable: 0,
    })
    const a = doc.files.find((f) => f.path === A)
    expect(a?.state).toBe('patched')
    expect(a?.patchedIntegrity).toBe(a?.currentIntegrity)
    expect(a?.patchedIntegrity).not.toBe(a?.backupIntegrity)
  })

  it('records only the files named, and reports JSON', async () => {
    await box.write(A, 'patched A\n')
    const r = await box.cli(['record', 'fix-1', `./${A}`, '--json'])
    expect(r.code).toBe(0)
    const doc = json<RecordJson>(r)
    expect(doc).toMatchObject({ uuid: 'fix-1', recorded: [A], failed: [], errors: [] })
    expect(doc.files).toEqual([
      {
        path: A,
        patchedIntegrity: expect.stringMatching(/^sha256-/),
        patchedSize: 10,
        unchanged: false,
      },
    ])
    const status = json<StatusJson>(await box.cli(['status', 'fix-1', '--json']))
    expect(status.files.map((f) => [f.path, f.state])).toEqual([
      [A, 'patched'],
      [B, 'original'],
      [C, 'original'],
    ])
  })

  it('exits 1 for a file the patch does not have, one that is gone, and an unknown patch', async () => {
    await rm(path.join(box.project, C))
    const r = await box.cli(['record', 'fix-1', A, 'node_modules/other.js', C, '--json'])
    expect(r.code).toBe(1)
    const doc = json<RecordJson>(r)
    expect(doc.recorded).toEqual([A])
    expect(doc.errors.map((e) => [e.path, e.code])).toEqual([
      ['node_modules/other.js', 'NOT_BACKED_UP'],
      [C, 'SOURCE_UNREADABLE'],
    ])
    const human = await box.cli(['record', 'fix-1', '../outside.js'])
    expect(human.code).toBe(1)
    expect(human.stderr).toMatch(/^Could not record 1 file:\n\s+\.\.\/outside\.js\s+INVALID_PATH/)
    const unknown = await box.cli(['record', 'nope', '--json'])
    expect(unknown.code).toBe(1)
    expect(json(unknown)).toMatchObject({ error: { code: 'PATCH_NOT_FOUND' } })
  })
})

describe('drift', () => {
  beforeEach(async () => {
    await patchAndRecord()
    // Something else (a reinstall) rewrites B after the patch.
    await box.write(B, 'reinstalled\n')
  })

  it('status shows the drifted file with the hint', async () => {
    const r = await box.cli(['status', 'fix-1'])
    expect(r.code).toBe(0)
    expect(r.stdout).toContain(`  drifted   ${B}\n`)
    expect(r.stdout).toMatch(/^Patch fix-1: 3 files, 1 original, 1 patched, 1 drifted\n/)
    expect(r.stdout).toContain('restore refuses them unless --force')
  })

  it('restore refuses a drifted file: exit 1, nothing written, both hashes named', async () => {
    const before = await readAll()
    const r = await box.cli(['restore', 'fix-1'])
    expect(r.code).toBe(1)
    expect(r.stdout).toBe('')
    expect(r.stderr).toMatch(
      /^Restored nothing of patch fix-1: 1 file could not be restored, so every file was left as it was \(all or nothing\):\n/,
    )
    expect(r.stderr).toMatch(
      /node_modules\/lodash\/template\.js\s+DRIFTED\s+changed since the patch: recorded sha256-\S+, now sha256-\S+\n/,
    )
    expect(r.stderr).toContain('run the restore again with --force')
    expect(await readAll()).toEqual(before)

    const j = await box.cli(['restore', 'fix-1', '--json'])
    expect(j.code).toBe(1)
    expect(j.stderr).toBe('')
    const doc = json<RestoreJson>(j)
    expect(doc).toMatchObject({ atomic: true, restored: [], failed: [B] })
    expect(doc.errors).toEqual([{ path: B, code: 'DRIFTED', message: expect.any(String) }])
    const status = json<StatusJson>(await box.cli(['status', 'fix-1', '--json']))
    const b = status.files.find((f) => f.path === B)
    expect(doc.drifted).toEqual([
      { path: B, patchedIntegrity: b?.patchedIntegrity, currentIntegrity: b?.currentIntegrity },
    ])
    expect(doc.errors[0]?.message).toContain(b?.patchedIntegrity)
    expect(doc.errors[0]?.message).toContain(b?.currentIntegrity)

    // One file at a time refuses it too, and restores the ones named that did not drift.
    const named = await box.cli(['restore', 'fix-1', A, B, '--json'])
    expect(named.code).toBe(1)
    expect(json<RestoreJson>(named)).toMatchObject({ atomic: false, restored: [A], failed: [B] })
    expect(await read(A)).toBe(ORIGINAL[A])
    expect(await read(B)).toBe('reinstalled\n')
  })

  it('--dry-run says which files would be restored, are original, are drifted; writes nothing', async () => {
    const before = await readAll()
    const r = await box.cli(['restore', 'fix-1', '--dry-run'])
    expect(r.code).toBe(1)
    expect(r.stdout).toMatch(
      /^Dry run: 3 files of patch fix-1 verified; 1 would be restored, 1 already original, 1 refused \(drifted\)\. Nothing was written\.\n/,
    )
    expect(r.stdout).toMatch(/patched\s+node_modules\/lodash\/index\.js\s+\d+ B\n/)
    expect(r.stdout).toMatch(/drifted\s+node_modules\/lodash\/template\.js\s+\d+ B\s+refused/)
    expect(r.stdout).toMatch(
      /original\s+node_modules\/minimist\/index\.js\s+\d+ B\s+already original/,
    )
    expect(r.stderr).toMatch(/an all-or-nothing restore would change nothing/)
    const doc = json<RestoreJson>(await box.cli(['restore', 'fix-1', '--dry-run', '--json']))
    expect(doc.files?.map((f) => [f.path, f.current, f.action])).toEqual([
      [A, 'patched', 'restore'],
      [B, 'drifted', 'refuse'],
      [C, 'original', 'unchanged'],
    ])
    expect(doc.failed).toEqual([B])
    expect(doc.drifted.map((d) => d.path)).toEqual([B])
    const forced = await box.cli(['restore', 'fix-1', '--dry-run', '--force', '--json'])
    expect(forced.code).toBe(0)
    expect(json<RestoreJson>(forced).files?.map((f) => f.action)).toEqual([
      'restore',
      'restore',
      'unchanged',
    ])
    expect(await readAll()).toEqual(before)
  })

  it('--force restores it, and undo puts back the drifted bytes', async () => {
    const r = await box.cli(['restore', 'fix-1', '--force'])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toMatch(
      /^Restored 2 files of patch fix-1 \(all or nothing\); 1 already original, left as it was\n/,
    )
    expect(await readAll()).toEqual(ORIGINAL)

    const undone = await box.cli(['undo', 'fix-1'])
    expect(undone.code, undone.stderr).toBe(0)
    expect(undone.stdout).toBe(
      [
        'Undid the last restore of patch fix-1: 2 files as they were before it',
        `  put back  ${A}`,
        `  put back  ${B}`,
        '',
      ].join('\n'),
    )
    expect(await read(A)).toBe('module.exports = 2 // patched\n')
    expect(await read(B)).toBe('reinstalled\n')
    expect(await read(C)).toBe(ORIGINAL[C])
  })

  it('--force on named files restores them one by one', async () => {
    const r = await box.cli(['restore', 'fix-1', B, '--force', '--json'])
    expect(r.code).toBe(0)
    expect(json<RestoreJson>(r)).toMatchObject({ atomic: false, restored: [B], failed: [] })
    expect(await read(B)).toBe(ORIGINAL[B])
    expect(json<UndoJson>(await box.cli(['undo', 'fix-1', '--json'])).undone).toEqual([B])
    expect(await read(B)).toBe('reinstalled\n')
  })
})

describe('an all-or-nothing restore', () => {
  it('with a corrupt blob leaves every file as it was (exit 1)', async () => {
    const { files } = json<{ files: Record<string, { integrity: string }> }>(
      await box.cli(['backup', 'fix-1', A, B, C, '--json']),
    )
    await box.write(A, 'patched A\n')
    await box.write(B, 'patched B\n')
    await rm(path.join(box.project, C))
    await cacheFixtureHooks(box.cache).corrupt(files[B]?.integrity as string)
    const before = await readAll()

    const r = await box.cli(['restore', 'fix-1'])
    expect(r.code).toBe(1)
    expect(r.stdout).toBe('')
    expect(r.stderr).toMatch(
      /^Restored nothing of patch fix-1: 1 file could not be restored, so every file was left as it was \(all or nothing\):\n\s+node_modules\/lodash\/template\.js\s+INTEGRITY_MISMATCH/,
    )
    expect(await readAll()).toEqual(before)

    const j = await box.cli(['restore', 'fix-1', '--json'])
    expect(j.code).toBe(1)
    expect(json<RestoreJson>(j)).toMatchObject({
      atomic: true,
      restored: [],
      failed: [B],
      errors: [{ path: B, code: 'INTEGRITY_MISMATCH' }],
    })
    expect(await readAll()).toEqual(before)
    // No temp file left beside any target.
    for (const dir of ['node_modules/lodash', 'node_modules/minimist']) {
      const names = await readdir(path.join(box.project, dir)).catch(() => [])
      expect(names.filter((n) => n.endsWith('.tmp'))).toEqual([])
    }
  })

  it('is undone byte for byte, a file that was missing included', async () => {
    const binary = Buffer.from([0, 255, 1, 254, 2, 253])
    await box.write(A, binary)
    await box.write(B, 'patched B\n')
    await rm(path.join(box.project, C))
    const r = await box.cli(['restore', 'fix-1', '--json'])
    expect(r.code, r.stderr).toBe(0)
    expect(json<RestoreJson>(r).restored).toEqual([A, B, C])
    expect(await readAll()).toEqual(ORIGINAL)

    const undone = await box.cli(['undo', 'fix-1', '--json'])
    expect(undone.code).toBe(0)
    expect(json<UndoJson>(undone)).toEqual({
      uuid: 'fix-1',
      undone: [A, B, C],
      removed: [C],
      failed: [],
      errors: [],
    })
    expect((await readFile(path.join(box.project, A))).equals(binary)).toBe(true)
    expect(await read(B)).toBe('patched B\n')
    await expect(stat(path.join(box.project, C))).rejects.toMatchObject({ code: 'ENOENT' })

    const again = await box.cli(['undo', 'fix-1'])
    expect(again.code).toBe(0)
    expect(again.stdout).toBe(
      'Nothing to undo: patch fix-1 has no all-or-nothing or forced restore to take back.\n',
    )
    const unknown = await box.cli(['undo', 'nope', '--json'])
    expect(unknown.code).toBe(1)
    expect(json(unknown)).toMatchObject({ error: { code: 'PATCH_NOT_FOUND' } })
  })
})

describe('recover', () => {
  /** What a restore killed between its renames leaves: a verified temp file and the journal. */
  async function leaveCommitting(owner?: { pid: number; host: string }) {
    await box.write(A, 'patched A\n')
    const temp = 'node_modules/lodash/.pb-feed-0.tmp'
    await box.write(temp, ORIGINAL[A] as string)
    const manifest = JSON.parse(await readFile(manifestFile('fix-1'), 'utf8'))
    manifest.restoreJournal = {
      id: 'feed',
      phase: 'committing',
      startedAt: new Date().toISOString(),
      ...(owner && { owner }),
      files: { [A]: { temp, previous: null } },
    }
    await writeFile(manifestFile('fix-1'), JSON.stringify(manifest))
  }

  it('says there is nothing to recover when no restore was interrupted', async () => {
    const r = await box.cli(['recover', 'fix-1'])
    expect(r).toEqual({
      code: 0,
      stdout: 'Nothing to recover: no restore of patch fix-1 was interrupted.\n',
      stderr: '',
    })
    const j = await box.cli(['recover', 'fix-1', '--json'])
    expect(json(j)).toEqual({ uuid: 'fix-1', outcome: 'nothing', files: [] })
    const unknown = await box.cli(['recover', 'nope'])
    expect(unknown.code).toBe(1)
    expect(unknown.stderr).toMatch(/^error: No patch nope/)
  })

  it('finishes a restore that a crash left committing', async () => {
    await leaveCommitting()
    const r = await box.cli(['recover', 'fix-1'])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toBe(
      `Finished the interrupted restore of patch fix-1: 1 file restored\n  restored  ${A}\n`,
    )
    expect(await read(A)).toBe(ORIGINAL[A])
    expect(await readdir(path.join(box.project, 'node_modules/lodash'))).not.toContain(
      '.pb-feed-0.tmp',
    )
    expect(json(await box.cli(['recover', 'fix-1', '--json']))).toMatchObject({
      outcome: 'nothing',
    })
  })

  it('leaves a restore whose process looks alive, and with --force recovers it (a reused pid)', async () => {
    // pid 1 is alive; a journal of an older version records nothing else of its owner.
    await leaveCommitting({ pid: 1, host: os.hostname() })
    const busy = await box.cli(['recover', 'fix-1', '--json'])
    expect(busy.code).toBe(1)
    expect(json(busy)).toMatchObject({ error: { code: 'RESTORE_IN_PROGRESS' } })
    expect((json(busy) as { error: { message: string } }).error.message).toContain(
      'patch-backup recover fix-1 --force',
    )
    const restore = await box.cli(['restore', 'fix-1', '--json'])
    expect(json(restore)).toMatchObject({ error: { code: 'RESTORE_IN_PROGRESS' } })
    expect(await read(A)).toBe('patched A\n')
    const forced = await box.cli(['recover', 'fix-1', '--force'])
    expect(forced.code, forced.stderr).toBe(0)
    expect(await read(A)).toBe(ORIGINAL[A])
  })
})
