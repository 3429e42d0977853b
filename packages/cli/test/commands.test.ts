import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {
  createFilePaths,
  createMemoryManifestRepository,
  createMemoryStore,
  createPatchBackups,
  type MemoryStore,
} from '@patch-backup/core'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { backup } from '../src/commands/backup.js'
import { cleanup } from '../src/commands/cleanup.js'
import type { CommandContext, ProgressSink } from '../src/commands/context.js'
import { diff } from '../src/commands/diff.js'
import { list } from '../src/commands/list.js'
import { restore } from '../src/commands/restore.js'
import { status } from '../src/commands/status.js'
import { verify } from '../src/commands/verify.js'
import { countTransfers } from '../src/output/count-transfers.js'

// The commands are plain async functions: here they run on the memory adapters, no process.
const A = 'node_modules/a/index.js'
const B = 'node_modules/b/data.bin'

let project: string
let memory: MemoryStore
let context: CommandContext
const read = (file: string) => readFile(path.join(project, file), 'utf8')
const write = async (file: string, content: string | Uint8Array) => {
  await mkdir(path.dirname(path.join(project, file)), { recursive: true })
  await writeFile(path.join(project, file), content)
}

function withStore(store: CommandContext['backups']['store'], progress?: ProgressSink) {
  const service = createPatchBackups({
    store,
    manifests: createMemoryManifestRepository(),
    projectRoot: project,
  })
  const paths = createFilePaths({ projectRoot: project })
  const backups = Object.assign(service, { cwd: project, store, paths })
  return progress ? { backups, progress } : { backups }
}

beforeEach(async () => {
  project = await mkdtemp(path.join(os.tmpdir(), 'pb-commands-'))
  await write(A, 'one\ntwo\n')
  await write(B, Buffer.from([0, 1, 2]))
  memory = createMemoryStore()
  context = withStore(memory)
})
afterEach(() => rm(project, { recursive: true, force: true }))

describe('commands as functions', () => {
  it('backup, status, diff, restore return data', async () => {
    const backedUp = await backup({ uuid: 'p', files: [A, B, A] }, context)
    expect(backedUp).toMatchObject({ uuid: 'p', backedUp: [A, B], failed: [], size: 11 })

    await write(A, 'one\nTWO\n')
    const now = await status({ uuid: 'p' }, context)
    expect(now.counts).toEqual({
      original: 1,
      patched: 0,
      drifted: 0,
      modified: 1,
      'mode-changed': 0,
      missing: 0,
      directory: 0,
      symlink: 0,
      'not-a-file': 0,
      unreadable: 0,
    })

    const changed = await diff({ uuid: 'p', file: `./${A}` }, context)
    expect(changed).toMatchObject({ path: A, state: 'modified', comparison: 'text' })
    expect(changed.diff).toContain('-two\n+TWO')

    const planned = await restore({ uuid: 'p', dryRun: true }, context)
    expect(planned.files?.map((f) => f.current)).toEqual(['modified', 'original'])
    expect(await read(A)).toBe('one\nTWO\n')

    const restored = await restore({ uuid: 'p' }, context)
    expect(restored).toMatchObject({ restored: [A, B], failed: [], dryRun: false, atomic: true })
    expect(await read(A)).toBe('one\ntwo\n')
  })

  it('throw PatchBackupErrors with codes for what is not there', async () => {
    await expect(restore({ uuid: 'nope' }, context)).rejects.toMatchObject({
      code: 'PATCH_NOT_FOUND',
    })
    await backup({ uuid: 'p', files: [A] }, context)
    await expect(diff({ uuid: 'p', file: B }, context)).rejects.toMatchObject({
      code: 'FILE_NOT_FOUND',
    })
    await expect(list({ uuid: 'bad/uuid' }, context)).rejects.toMatchObject({
      code: 'INVALID_UUID',
    })
  })

  it('verify and restore report a tampered backup; restore leaves the file alone', async () => {
    const { files } = await backup({ uuid: 'p', files: [A, B] }, context)
    memory.tamper(files[A]?.integrity as string, Buffer.from('one\ntwX\n'))
    const report = await verify({ uuid: 'p' }, context)
    expect(report.problems).toEqual([
      expect.objectContaining({ uuid: 'p', path: A, code: 'INTEGRITY_MISMATCH' }),
    ])
    await write(A, 'patched\n')
    const result = await restore({ uuid: 'p', files: [A, B] }, context)
    expect(result.failed).toEqual([A])
    expect(result.restored).toEqual([B])
    expect(await read(A)).toBe('patched\n')
    const dry = await restore({ uuid: 'p', dryRun: true }, context)
    expect(dry.errors).toEqual([expect.objectContaining({ path: A, code: 'INTEGRITY_MISMATCH' })])
  })

  it('cleanup removes nothing when a uuid names no patch, and reports what it removed', async () => {
    await backup({ uuid: 'p', files: [A] }, context)
    await expect(cleanup({ uuids: ['p', 'q'] }, context)).rejects.toMatchObject({
      code: 'PATCH_NOT_FOUND',
    })
    expect(await cleanup({ uuids: ['p'] }, context)).toEqual({
      removed: ['p'],
      notFound: [],
      errors: [],
    })
  })

  it('report progress in bytes and files through a counting store', async () => {
    const events: string[] = []
    let bytes = 0
    let files = 0
    const sink: ProgressSink = {
      start: (label, total) => events.push(`start ${label} ${total.files}/${total.bytes}`),
      advance: (d) => {
        bytes += d.bytes ?? 0
        files += d.files ?? 0
      },
      stop: () => events.push(`stop ${files}/${bytes}`),
    }
    const counted = withStore(countTransfers(createMemoryStore(), sink), sink)
    await backup({ uuid: 'p', files: [A, B] }, counted)
    // Changed files: a restore leaves a file that already holds its backup as it is, unread.
    await write(A, 'patched\n')
    await write(B, 'patched\n')
    await restore({ uuid: 'p', atomic: false }, counted)
    await verify({}, counted)
    expect(events).toEqual([
      'start backup 2/11',
      'stop 2/11',
      'start restore 2/11',
      'stop 4/22',
      'start verify 2/11',
      'stop 6/33',
    ])
  })

  it('keeps a verifying store verifying: a rotten blob still fails the restore', async () => {
    const sink: ProgressSink = { start: () => {}, advance: () => {}, stop: () => {} }
    const inner = createMemoryStore()
    const counted = withStore(countTransfers(inner, sink), sink)
    expect(counted.backups.store.verifiesReads).toBe(true)
    await backup({ uuid: 'p', files: [A] }, counted)
    const { integrity } = (await counted.backups.getBackupInfo('p', A))!
    inner.tamper(integrity, Buffer.from('one\nTWO\n'))
    await write(A, 'patched')
    const result = await restore({ uuid: 'p', files: [A], atomic: false }, counted)
    expect(result.errors.map((e) => e.code)).toEqual(['INTEGRITY_MISMATCH'])
    expect(await read(A)).toBe('patched')
  })
})
