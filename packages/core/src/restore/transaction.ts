// Restores: the transaction, its journal, undo and recovery, and the only writes to project files.
// Restore never writes outside a confining project root and never frees stored bytes (it adds snapshots).

import { constants, renameSync } from 'node:fs'
import { open, rename, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import type { Readable } from 'node:stream'
import pMap from 'p-map'
import { breathe } from '../breathe.js'
import { asStoreError, isBrokenBytesError, PatchBackupError } from '../errors.js'
import type { FilePaths, ProjectFile } from '../file-path.js'
import { SizeCapStream, VerifyingStream, verifyBytes } from '../integrity.js'
import { backupKey, newRestoreId, snapshotKey } from '../store-keys/layout.js'
import { pinsOf } from '../store-keys/pins.js'
import type {
  BackupInfo,
  BackupStore,
  FileError,
  ManifestRepository,
  ManifestUpdater,
  PatchManifest,
  RestoreAllResult,
} from '../types.js'
import {
  type CurrentFile,
  classify,
  describeTarget,
  type FileState,
  hashCurrentFile,
  type InspectedFile,
  restoreStep,
} from './file-state.js'
import {
  isAbandoned,
  type JournalFile,
  journalOf,
  lastRestoreOf,
  type RestoreJournal,
  restoreInProgress,
  type Snapshot,
  snapshotStoreKey,
  storeKeysOf,
  withoutJournal,
} from './journal.js'
import { thisProcess } from './process-identity.js'
import {
  removeDeadTemps,
  replaceWithSymlink,
  writeAtomically,
  writeAtomicallySync,
  writeNewFile,
  writeNewFileSync,
} from './safe-target.js'
import { PACKABLE_BYTES, type PackCache, packedBytes, storePacks } from './snapshot-pack.js'

export interface RestoreOptions {
  /** Restore a `drifted` file anyway; its current bytes are kept as a snapshot first. */
  force?: boolean
}

export interface RestoreAllOptions extends RestoreOptions {
  /** All or nothing: stage every file, then rename them all; on failure put back what was replaced. */
  atomic?: boolean
}

export interface FileStatus {
  path: string
  state: FileState
  backupIntegrity: string
  patchedIntegrity?: string
  currentIntegrity?: string
  /** Hard links the file has now, when more than one: writing it in place writes into them all. */
  links?: number
}

export interface FileOutcomes {
  done: string[]
  failed: string[]
  errors: FileError[]
}

export interface RecoverResult {
  /** What the interrupted restore became: finished (`rolled-forward`) or undone (`rolled-back`). */
  outcome: 'rolled-forward' | 'rolled-back'
  files: string[]
}

export interface RestoreDeps {
  store: BackupStore
  manifests: ManifestRepository
  /** Turns manifest keys into files (confined to the project root, or not). */
  paths: FilePaths
  /** Creates a target's missing parents, never through a symlink out of a confining root. */
  ensureParent: (file: ProjectFile) => Promise<void>
  /**
   * Refuses (`INVALID_PATH`) to act on a confined file whose directory resolves outside the
   * project at this moment; `false` when that directory is gone. Undo and recovery call it just
   * before they delete, rename or write.
   */
  checkNow: (file: ProjectFile) => Promise<boolean>
  now: () => Date
  concurrency: number
  /** Give restored files the setuid, setgid and sticky bits their recorded mode has. Default: never. */
  allowSpecialModeBits?: boolean
}

/** Blobs up to this size are restored from memory (see `BackupStore.readWhole`). */
const SMALL_BLOB_BYTES = 1024 * 1024
/** A target up to this size is kept in memory between hashing it and snapshotting it. */
const KEEP_TARGET_BYTES = 256 * 1024
/** What an all-or-nothing restore keeps in memory that way, at most, across its files. */
const KEEP_BUDGET_BYTES = 32 * 1024 * 1024

/** Permission bits only: a manifest (which anyone who can write the root may edit) never makes a setuid file. */
const PERMISSION_BITS = 0o777

const JOURNAL_TEMP = /^\.pb-[0-9a-z.]+-\d+\.tmp$/

/** Whether a journal's temp for `key` is what a restore writes: `.pb-<id>-<n>.tmp` in its directory. */
function isJournalTemp(key: string, temp: unknown): boolean {
  return (
    typeof temp === 'string' &&
    JOURNAL_TEMP.test(path.posix.basename(temp)) &&
    path.posix.dirname(temp) === path.posix.dirname(key)
  )
}

export function toFileError(filePath: string, error: unknown): FileError {
  if (error instanceof PatchBackupError)
    return { path: filePath, code: error.code, message: error.message }
  const message = error instanceof Error ? error.message : String(error)
  return { path: filePath, code: 'UNEXPECTED', message }
}

function unwritable(file: ProjectFile, error: unknown): PatchBackupError {
  if (error instanceof PatchBackupError) return error
  const reason =
    (error as NodeJS.ErrnoException)?.code ??
    (error instanceof Error ? error.message : String(error))
  return new PatchBackupError(
    'TARGET_UNWRITABLE',
    `Cannot write ${file.absolute} (${reason}). Check the permissions of its directory; the file was left as it was.`,
    { cause: error, path: file.key },
  )
}

function unreadableTarget(file: ProjectFile, error: unknown): PatchBackupError {
  const reason =
    (error as NodeJS.ErrnoException)?.code ??
    (error instanceof Error ? error.message : String(error))
  return new PatchBackupError(
    'TARGET_UNREADABLE',
    `Cannot read ${file.absolute} (${reason}) to keep it for undo before restoring it. Check its permissions; it was left as it was.`,
    { cause: error, path: file.key },
  )
}

export function createRestoreTransactions(deps: RestoreDeps) {
  const { store, manifests, now, concurrency } = deps
  const fileOf = (key: string) => deps.paths.fromKey(key)
  const tempOf = (relative: string) => deps.paths.fromKey(relative).absolute

  async function openBlob(
    storeKey: string,
    file: ProjectFile,
    integrity: string,
  ): Promise<Readable> {
    let stream: Readable | undefined
    try {
      stream = await store.open(storeKey, integrity)
    } catch (error) {
      throw asStoreError(error, `read the stored bytes of ${file.key}`)
    }
    if (!stream) {
      throw new PatchBackupError(
        'BLOB_MISSING',
        `The stored bytes of ${file.key} (${integrity}) are gone from the store. The file was left as it was; run 'patch-backup verify' to check the rest.`,
        { path: file.key },
      )
    }
    return stream
  }

  function modeOf(blob: Snapshot | BackupInfo): number | undefined {
    const recorded = blob.mode as number | undefined
    return recorded === undefined || deps.allowSpecialModeBits
      ? recorded
      : recorded & PERMISSION_BITS
  }

  /** Bytes already checked, to the target (temp + rename) or into the new file `temp`. */
  async function writeBytes(
    file: ProjectFile,
    bytes: Buffer,
    blob: Snapshot | BackupInfo,
    temp?: string,
  ): Promise<void> {
    const mode = modeOf(blob)
    try {
      await deps.ensureParent(file)
      if (temp === undefined) writeAtomicallySync(file.absolute, bytes, mode)
      else writeNewFileSync(temp, bytes, mode ?? 0o644)
    } catch (error) {
      throw unwritable(file, error)
    }
  }

  /**
   * Verified bytes from the store: to the target (temp + rename), or with `temp` into that new
   * temp file only, leaving the target untouched (an atomic restore's staging).
   */
  async function writeFromStore(
    storeKey: string,
    file: ProjectFile,
    blob: Snapshot | BackupInfo,
    temp?: string,
  ): Promise<void> {
    const mode = modeOf(blob)
    // A small blob the store holds as it is: read, checked and written with synchronous calls.
    await breathe()
    const whole = store.readWhole?.(storeKey, blob.integrity, SMALL_BLOB_BYTES)
    if (whole) {
      if (whole.length !== blob.size) verifyBytes(whole, blob.integrity, blob.size)
      return writeBytes(file, whole, blob, temp)
    }
    const openSource = () => openBlob(storeKey, file, blob.integrity)
    // Hashing bytes the store has just verified again cost a fifth of a large restore's time;
    // counting them is free, and stops a blob that runs past its size before it fills the disk.
    const verify = store.verifiesReads
      ? [new SizeCapStream(blob.integrity, blob.size)]
      : [new VerifyingStream(blob.integrity, blob.size)]
    try {
      await deps.ensureParent(file)
      if (temp === undefined) await writeAtomically(file.absolute, openSource, mode, verify)
      else await writeNewFile(temp, openSource, mode ?? 0o644, verify)
    } catch (error) {
      throw unwritable(file, error)
    }
  }

  /**
   * A backup's bytes to its target (or `temp`). On a store that reads by key, an overwrite that
   * failed or was killed may have left the backup key on its new bytes, with the recorded ones
   * held by its pin: those are read then.
   */
  async function writeBackup(
    uuid: string,
    file: ProjectFile,
    entry: BackupInfo,
    temp?: string,
  ): Promise<void> {
    try {
      await writeFromStore(backupKey(uuid, file.key), file, entry, temp)
    } catch (error) {
      if (!isBrokenBytesError(error)) throw error
      for (const pin of await pinsOf(store, uuid, file.key).catch(() => [])) {
        try {
          await writeFromStore(pin, file, entry, temp)
          return
        } catch {
          // not this one: try the next
        }
      }
      throw error
    }
  }

  async function snapshot(
    uuid: string,
    file: ProjectFile,
    current: InspectedFile,
    restoreId: string,
  ): Promise<Snapshot> {
    const key = snapshotKey(uuid, file.key, restoreId)
    // A symlink is kept as the link it is: reading through it would copy bytes from wherever it
    // points (maybe outside the project) into the project on undo.
    if (current.kind === 'symlink')
      return { integrity: '', size: 0, mode: current.mode, symlink: current.link ?? '' }
    // The bytes hashed a moment ago: the ones the restore compared and is about to replace.
    if (current.bytes) {
      try {
        const stored = await store.put(key, current.bytes)
        return { integrity: stored.integrity, size: stored.size, mode: current.mode, key }
      } catch (error) {
        throw asStoreError(error, `keep a snapshot of ${file.key} before restoring it`)
      }
    }
    let handle: Awaited<ReturnType<typeof open>>
    try {
      handle = await open(file.absolute, constants.O_RDONLY | constants.O_NOFOLLOW)
    } catch (error) {
      throw unreadableTarget(file, error)
    }
    let readError: unknown
    try {
      const source = handle.createReadStream({ autoClose: false })
      source.on('error', (error) => {
        readError = error
      })
      const stored = await store.put(key, source)
      return { integrity: stored.integrity, size: stored.size, mode: current.mode, key }
    } catch (error) {
      if (readError !== undefined) throw unreadableTarget(file, readError)
      throw asStoreError(error, `keep a snapshot of ${file.key} before restoring it`)
    } finally {
      await handle.close().catch(() => {})
    }
  }

  /**
   * Before a restore, undo or recovery of a patch: removes what a restore killed mid-write left,
   * temp files beside the targets of `keys` (default: every file) and scratch files in the store
   * (only those of dead processes).
   */
  async function removeLeftovers(
    manifest: PatchManifest,
    keys: readonly string[] = Object.keys(manifest.files),
  ): Promise<void> {
    const dirs = new Set<string>()
    for (const key of keys) {
      try {
        const file = fileOf(key)
        if (await deps.checkNow(file)) dirs.add(path.dirname(file.absolute))
      } catch {
        // a key that resolves nowhere in the project (or through a symlink out): nothing to sweep
      }
    }
    await removeDeadTemps(dirs)
    await store.removeDeadScratch?.().catch(() => 0)
  }

  /**
   * Puts back what a restore replaced, checking where the target resolves to at this moment.
   * `packs` holds the snapshot packs read so far by this undo or recovery.
   */
  async function putBack(
    uuid: string,
    key: string,
    previous: Snapshot | null,
    packs: PackCache,
  ): Promise<void> {
    const file = fileOf(key)
    if (previous === null) {
      if (await deps.checkNow(file)) await rm(file.absolute, { force: true })
    } else if (previous.symlink !== undefined) {
      await deps.ensureParent(file)
      await deps.checkNow(file)
      await replaceWithSymlink(file.absolute, previous.symlink)
    } else if (previous.pack !== undefined) {
      const storeKey = snapshotStoreKey(uuid, key, previous)
      await breathe()
      await writeBytes(file, await packedBytes(store, storeKey, previous, packs), previous)
    } else await writeFromStore(snapshotStoreKey(uuid, key, previous), file, previous)
  }

  /** Sets what `undo` puts back, leaving any journal of a restore in flight as it is. */
  /**
   * Writes restore state (journal, lastRestore) and frees the snapshots the manifest stops
   * recording: replaced by a newer restore, undone, or rolled back. Nothing else can use them, for
   * each restore's snapshot keys are its own; their bytes go unless another key holds them.
   */
  async function writeRestoreState(uuid: string, fn: ManifestUpdater): Promise<void> {
    let before: PatchManifest | undefined
    const after = await manifests.update(uuid, (current) => {
      before = current
      return fn(current)
    })
    if (!before || !after) return
    const still = new Set(storeKeysOf(uuid, after))
    await freeSnapshots(storeKeysOf(uuid, before).filter((key) => !still.has(key)))
  }

  async function freeSnapshots(keys: string[]): Promise<void> {
    const snapshots = keys.filter((key) => key.includes(':snapshot-'))
    await Promise.all(
      snapshots.map((key) => store.remove(key, { freeContent: true }).catch(() => false)),
    )
  }

  async function setLastRestore(uuid: string, last: Record<string, Snapshot | null>) {
    await writeRestoreState(uuid, (current) =>
      current ? { ...current, lastRestore: { at: now().toISOString(), files: last } } : current,
    )
  }

  /**
   * Writes the journal of restore `own` (or removes it), with `last` as what undo puts back.
   * Another restore's journal is never replaced: its owner may still need its snapshots.
   */
  async function setJournal(
    uuid: string,
    own: string,
    journal: RestoreJournal | undefined,
    last?: Record<string, Snapshot | null>,
  ) {
    await writeRestoreState(uuid, (current) => {
      if (!current) return current
      const other = journalOf(current)
      if (other && other.id !== own) throw restoreInProgress(uuid, other)
      const next = withoutJournal(current)
      if (journal) next.restoreJournal = journal
      if (last) next.lastRestore = { at: now().toISOString(), files: last }
      return next
    })
  }

  function previousOf(journal: RestoreJournal): Record<string, Snapshot | null> {
    return Object.fromEntries(Object.entries(journal.files).map(([key, f]) => [key, f.previous]))
  }

  /**
   * Finishes or undoes a restore that a crash interrupted. `undefined` when none was in flight.
   * A journal whose owner is still running is left alone: `explicit` callers get
   * `RESTORE_IN_PROGRESS`, others simply go on.
   */
  async function recover(
    uuid: string,
    manifest?: PatchManifest,
    explicit = false,
    force = false,
  ): Promise<RecoverResult | undefined> {
    const journal = journalOf(manifest ?? (await manifests.get(uuid)))
    if (!journal) return undefined
    if (!force && !isAbandoned(journal, os.hostname(), now().getTime())) {
      if (!explicit) return undefined
      throw restoreInProgress(uuid, journal)
    }
    const entries = Object.entries(journal.files)
    const settle = async (key: string, step: () => Promise<unknown>) => {
      try {
        await step()
      } catch (error) {
        throw unwritable(fileOf(key), error)
      }
    }
    // A journal names its paths; where they lead is checked now, before anything is touched.
    for (const [key, f] of entries) {
      if (!isJournalTemp(key, f.temp)) {
        throw new PatchBackupError(
          'INVALID_PATH',
          `The restore journal of patch ${uuid} names ${String(f.temp)} as the temp file of ${key}, but a restore only writes .pb-<id>-<n>.tmp beside its target. Nothing was touched; remove the patch's restoreJournal field or clean the patch up.`,
          { path: key },
        )
      }
      await settle(key, async () => {
        await deps.checkNow(fileOf(f.temp))
        await deps.checkNow(fileOf(key))
      })
    }
    if (journal.phase === 'committing') {
      for (const [key, f] of entries) {
        // A temp still there was never renamed; one that is gone already replaced its target.
        await settle(key, () =>
          rename(tempOf(f.temp), fileOf(key).absolute).catch((error: NodeJS.ErrnoException) => {
            if (error.code !== 'ENOENT') throw error
          }),
        )
      }
      await setJournal(uuid, journal.id, undefined, previousOf(journal))
      return { outcome: 'rolled-forward', files: entries.map(([k]) => k) }
    }
    const packs: PackCache = new Map()
    for (const [key, f] of entries) {
      await settle(key, () => rm(tempOf(f.temp), { force: true }))
      if (journal.phase === 'rolling-back') await putBack(uuid, key, f.previous, packs)
    }
    await setJournal(uuid, journal.id, undefined)
    return { outcome: 'rolled-back', files: entries.map(([k]) => k) }
  }

  /** One file, drift-aware. Resolves `unchanged` when the file already holds the backup. */
  async function restoreOne(
    uuid: string,
    file: ProjectFile,
    entry: BackupInfo,
    options: RestoreOptions = {},
  ): Promise<{ outcome: 'restored' | 'unchanged'; snapshot?: Snapshot | null }> {
    const current = await hashCurrentFile(file.absolute, options.force ? KEEP_TARGET_BYTES : 0)
    const { action, error } = restoreStep(file.key, file.absolute, entry, current, options)
    if (error) throw error
    if (action === 'unchanged') return { outcome: 'unchanged' }
    // A forced restore keeps whatever it replaces (null: there was no file), drifted or not, so
    // undo puts back all it changed.
    if (options.force) {
      const kept = current ? await snapshot(uuid, file, current, newRestoreId(Date.now())) : null
      await writeBackup(uuid, file, entry)
      return { outcome: 'restored', snapshot: kept }
    }
    await writeBackup(uuid, file, entry)
    return { outcome: 'restored' }
  }

  /** Records the snapshots one (non-atomic) restore call kept, so `undo` can put them back. */
  async function rememberSnapshots(
    uuid: string,
    kept: Record<string, Snapshot | null>,
  ): Promise<void> {
    if (Object.keys(kept).length > 0) await setLastRestore(uuid, kept)
  }

  async function restoreAtomic(
    uuid: string,
    manifest: PatchManifest,
    options: RestoreOptions = {},
  ) {
    const keys = Object.keys(manifest.files).sort()
    const result = {
      restored: [] as string[],
      failed: [] as string[],
      errors: [] as FileError[],
      rolledBack: false,
    } as RestoreAllResult & { rolledBack: boolean }
    const fail = (errors: FileError[]) => {
      result.errors = errors.sort((a, b) => a.path.localeCompare(b.path))
      result.failed = result.errors.map((e) => e.path)
      return result
    }

    // 1. Where does each file stand? Refuse drift before touching anything. Small targets stay in
    // memory (within a budget) for step 2's snapshots.
    let budget = KEEP_BUDGET_BYTES
    const plan = await pMap(
      keys,
      async (key) => {
        const file = fileOf(key)
        const entry = manifest.files[key] as BackupInfo
        const current = await hashCurrentFile(file.absolute, Math.min(KEEP_TARGET_BYTES, budget))
        if (current?.bytes) budget -= current.bytes.length
        return {
          key,
          file,
          entry,
          current,
          ...restoreStep(key, file.absolute, entry, current, options),
        }
      },
      { concurrency },
    )
    // Drift, or a target that is not a file: refused before anything is touched.
    const refused = plan.filter((p) => p.error !== undefined)
    if (refused.length > 0) return fail(refused.map((p) => toFileError(p.key, p.error)))
    const work = plan.filter((p) => p.action === 'restore')
    const unchanged = plan.filter((p) => p.action === 'unchanged').map((p) => p.key)
    if (unchanged.length > 0) result.unchanged = unchanged
    // Nothing to replace: no journal, and the last restore stays undoable.
    if (work.length === 0) {
      result.restored = keys
      return result
    }

    // 2. Keep what each target holds now, so a failure (or undoRestore) can put it back.
    // The real clock, not `now`: gc reads the id's time against its own clock (isYoungSnapshot).
    const id = newRestoreId(Date.now())
    const journal: RestoreJournal = {
      id,
      phase: 'staging',
      startedAt: now().toISOString(),
      owner: { pid: process.pid, host: os.hostname(), ...thisProcess() },
      files: {},
    }
    const tempOfStep = (p: (typeof work)[number], i: number) =>
      path.posix.join(path.posix.dirname(p.key), `.pb-${id}-${i}.tmp`)
    // Small regular files go into a few packs; the rest get a snapshot each.
    const packable = work.flatMap((p, i) =>
      p.current?.kind === 'file' && p.current.bytes && p.current.bytes.length <= PACKABLE_BYTES
        ? [{ p, i, bytes: p.current.bytes, integrity: p.current.integrity, mode: p.current.mode }]
        : [],
    )
    const packed = new Set(packable.map((t) => t.p))
    const packKeys: string[] = []
    let packError: FileError | undefined
    try {
      const snapshots = await storePacks(
        store,
        packable,
        (n) => snapshotKey(uuid, `\0pack-${n}`, id),
        packKeys,
      )
      packable.forEach((t, n) => {
        journal.files[t.p.key] = { temp: tempOfStep(t.p, t.i), previous: snapshots[n] ?? null }
      })
    } catch (error) {
      packError = toFileError((packable[0] as (typeof packable)[number]).p.key, error)
    }
    const snapshotErrors = packError
      ? [packError]
      : await pMap(
          work,
          async (p, i) => {
            if (packed.has(p)) return undefined
            try {
              const previous = p.current ? await snapshot(uuid, p.file, p.current, id) : null
              journal.files[p.key] = { temp: tempOfStep(p, i), previous } satisfies JournalFile
              return undefined
            } catch (error) {
              return toFileError(p.key, error)
            }
          },
          { concurrency },
        )
    // The snapshots kept so far, if they cannot be recorded: freed now rather than left to gc.
    const freeUnrecorded = async () => {
      const kept = new Set(packKeys)
      for (const [key, f] of Object.entries(journal.files)) {
        if (f.previous && f.previous.symlink === undefined)
          kept.add(snapshotStoreKey(uuid, key, f.previous))
      }
      await freeSnapshots([...kept])
    }
    const notKept = snapshotErrors.filter((e): e is FileError => e !== undefined)
    if (notKept.length > 0) {
      await freeUnrecorded()
      return fail(notKept)
    }
    try {
      await setJournal(uuid, id, journal)
    } catch (error) {
      // Another restore's journal appeared meanwhile, or the manifest cannot be written.
      await freeUnrecorded()
      throw error
    }

    // 3. Stage every file beside its target, verified. Any failure: drop the temps, change nothing.
    const staged = await pMap(
      work,
      async (p) => {
        try {
          await writeBackup(
            uuid,
            p.file,
            p.entry,
            tempOf((journal.files[p.key] as JournalFile).temp),
          )
          return undefined
        } catch (error) {
          return toFileError(p.key, error)
        }
      },
      { concurrency },
    )
    const stageErrors = staged.filter((e): e is FileError => e !== undefined)
    if (stageErrors.length > 0) {
      await recover(uuid, { ...manifest, restoreJournal: journal })
      return fail(stageErrors)
    }

    // 4. Commit: rename them all. A failure puts back every target already replaced.
    journal.phase = 'committing'
    await setJournal(uuid, id, journal)
    for (const p of work) {
      try {
        // Synchronous: a thread-pool round trip per rename doubled the time targets are mixed.
        await breathe()
        renameSync(tempOf((journal.files[p.key] as JournalFile).temp), p.file.absolute)
      } catch (error) {
        journal.phase = 'rolling-back'
        await setJournal(uuid, id, journal)
        await recover(uuid, { ...manifest, restoreJournal: journal })
        result.rolledBack = true
        return fail([toFileError(p.key, unwritable(p.file, error))])
      }
    }
    await setJournal(uuid, id, undefined, previousOf(journal))
    result.restored = keys
    return result
  }

  async function undo(uuid: string): Promise<FileOutcomes> {
    const outcome: FileOutcomes = { done: [], failed: [], errors: [] }
    const last = lastRestoreOf(await manifests.get(uuid))
    if (!last) return outcome
    const packs: PackCache = new Map()
    // In the order the restore filled its packs (code-unit order), so each pack is read once.
    for (const [key, previous] of Object.entries(last.files).sort(([a], [b]) =>
      a < b ? -1 : a > b ? 1 : 0,
    )) {
      try {
        await putBack(uuid, key, previous, packs)
        outcome.done.push(key)
      } catch (error) {
        outcome.failed.push(key)
        outcome.errors.push(toFileError(key, error))
      }
    }
    if (outcome.failed.length === 0) {
      await writeRestoreState(uuid, (current) => {
        if (!current) return current
        const { lastRestore: _last, ...rest } = current
        return rest as PatchManifest
      })
    }
    return outcome
  }

  async function recordPatched(
    uuid: string,
    manifest: PatchManifest,
    only?: readonly string[],
  ): Promise<FileOutcomes> {
    const outcome: FileOutcomes = { done: [], failed: [], errors: [] }
    const keys = only
      ? only.map((p) => deps.paths.resolve(p).key)
      : Object.keys(manifest.files).sort()
    const recorded: Record<string, CurrentFile> = {}
    for (const key of keys) {
      if (!manifest.files[key]) {
        outcome.failed.push(key)
        outcome.errors.push({
          path: key,
          code: 'NOT_BACKED_UP',
          message: `${key} has no backup in this patch.`,
        })
        continue
      }
      const current = await hashCurrentFile(fileOf(key).absolute)
      if (current?.kind !== 'file') {
        outcome.failed.push(key)
        outcome.errors.push({
          path: key,
          code: 'SOURCE_UNREADABLE',
          message: current
            ? `${key} is ${describeTarget(current)}, not a regular file to record.`
            : `${key} does not exist to record.`,
        })
        continue
      }
      recorded[key] = current
      outcome.done.push(key)
    }
    await manifests.update(uuid, (current) => {
      if (!current) return current
      const files = { ...current.files }
      for (const [key, now] of Object.entries(recorded)) {
        const entry = files[key]
        if (entry) files[key] = { ...entry, patchedIntegrity: now.integrity, patchedSize: now.size }
      }
      return { ...current, files }
    })
    return outcome
  }

  async function status(manifest: PatchManifest): Promise<FileStatus[]> {
    const keys = Object.keys(manifest.files).sort()
    return pMap(
      keys,
      async (key) => {
        const entry = manifest.files[key] as BackupInfo
        const current = await hashCurrentFile(fileOf(key).absolute)
        const state = classify(entry, current)
        const status: FileStatus = { path: key, state, backupIntegrity: entry.integrity }
        if (typeof entry.patchedIntegrity === 'string')
          status.patchedIntegrity = entry.patchedIntegrity
        if (current?.kind === 'file') status.currentIntegrity = current.integrity
        if ((current?.links ?? 1) > 1) status.links = current?.links
        return status
      },
      { concurrency },
    )
  }

  return {
    recover,
    restoreOne,
    rememberSnapshots,
    restoreAtomic,
    undo,
    recordPatched,
    status,
    removeLeftovers,
  }
}
