import { randomBytes } from 'node:crypto'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import {
  type LastRestore,
  type ManifestRepository,
  type PatchManifest,
  patchKeyPrefix,
  type RestoreJournal,
  snapshotKey,
} from '@patch-backup/core'

/*
 * The manifests of a `--store s3://…` run: the bucket's, shared by every machine with the URL,
 * composed with what must stay on this machine. Owns the split between the two; never touches
 * the store's bytes.
 *
 * - A restore's crash journal (`restoreJournal`) and its undo (`lastRestore`) describe files on
 *   this machine's disk: another machine must neither finish nor undo them. They live under
 *   `<root>/_patches/machine/`, and are merged into the manifest the service sees.
 * - The snapshot keys those two name are recorded in the bucket's manifest all the same, under
 *   this machine's id (`machineSnapshots`): gc on any machine must keep them, and sees only the
 *   bucket. Snapshot keys nobody records there are garbage once past the grace (remote-store.ts).
 * - Manifests an older CLI kept under `<root>/_patches/manifests/` (bytes in the bucket, manifests
 *   local) stay readable and listed; the first update of such a patch moves it into the bucket,
 *   and `migrate-manifests` moves them all.
 */

/** Manifest fields that belong to this machine, not to the bucket. */
export const MACHINE_FIELDS = ['restoreJournal', 'lastRestore'] as const

/**
 * The bucket manifest's field of the snapshot keys each machine's journal and undo name:
 * `{ "<machine id>": ["socket:patch:backup:<uuid>:snapshot-…", …] }`. Not shown to the service.
 */
export const SNAPSHOTS_FIELD = 'machineSnapshots'

type MachineParts = Partial<Record<(typeof MACHINE_FIELDS)[number], unknown>>

export interface BucketManifestsOptions {
  /** The repository in the bucket (`createS3ManifestRepository`). */
  shared: ManifestRepository
  /** This machine's part of each manifest (a JSON repository under the root). */
  machine: ManifestRepository
  /** Manifests an older CLI wrote under the root, read until they are moved. */
  legacy: ManifestRepository
  /**
   * This machine's id (see `machineIdAt`), under which its snapshot keys are recorded in the
   * bucket. Without it nothing is recorded there, and gc elsewhere cannot see this machine's undo.
   */
  machineId?: () => Promise<string>
}

function machinePartsOf(manifest: PatchManifest | undefined): MachineParts {
  const parts: MachineParts = {}
  for (const field of MACHINE_FIELDS) {
    if (manifest?.[field] !== undefined) parts[field] = manifest[field]
  }
  return parts
}

function withoutMachineParts(manifest: PatchManifest): PatchManifest {
  const rest: PatchManifest = { ...manifest }
  for (const field of MACHINE_FIELDS) delete rest[field]
  delete rest[SNAPSHOTS_FIELD]
  return rest
}

/** The snapshot keys a machine's journal and undo name (core's storeKeysOf, snapshots only). */
export function snapshotKeysOf(uuid: string, parts: MachineParts): string[] {
  const keys = new Set<string>()
  const add = (file: string, snapshot: unknown) => {
    if (typeof snapshot !== 'object' || snapshot === null || 'symlink' in snapshot) return
    const key = (snapshot as { key?: unknown }).key
    keys.add(
      typeof key === 'string' && key.startsWith(patchKeyPrefix(uuid))
        ? key
        : snapshotKey(uuid, file),
    )
  }
  const last = parts.lastRestore as LastRestore | undefined
  for (const [file, snapshot] of Object.entries(last?.files ?? {})) add(file, snapshot)
  const journal = parts.restoreJournal as RestoreJournal | undefined
  for (const [file, entry] of Object.entries(journal?.files ?? {})) add(file, entry?.previous)
  return [...keys].sort()
}

/** Every snapshot key some machine records in this bucket manifest. */
export function heldSnapshots(manifest: PatchManifest | undefined): Set<string> {
  const held = new Set<string>()
  const byMachine = manifest?.[SNAPSHOTS_FIELD]
  if (typeof byMachine !== 'object' || byMachine === null) return held
  for (const keys of Object.values(byMachine)) {
    if (Array.isArray(keys)) for (const key of keys) if (typeof key === 'string') held.add(key)
  }
  return held
}

/** `manifest` (bound for the bucket) with this machine's snapshot keys set to `keys`. */
function withSnapshots(
  manifest: PatchManifest,
  recorded: unknown,
  machine: string,
  keys: string[],
): PatchManifest {
  const byMachine: Record<string, unknown> =
    typeof recorded === 'object' && recorded !== null ? { ...recorded } : {}
  if (keys.length > 0) byMachine[machine] = keys
  else delete byMachine[machine]
  const next: PatchManifest = { ...manifest }
  if (Object.keys(byMachine).length > 0) next[SNAPSHOTS_FIELD] = byMachine
  else delete next[SNAPSHOTS_FIELD]
  return next
}

/**
 * This machine's id, kept in `file` (`<root>/_patches/machine-id`): made at random the first time,
 * so two machines with the same host name and root never share one.
 */
export async function machineIdAt(file: string): Promise<string> {
  const read = async () => (await readFile(file, 'utf8')).trim()
  try {
    const id = await read()
    if (/^[0-9a-f]{16,}$/.test(id)) return id
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
  }
  await mkdir(path.dirname(file), { recursive: true })
  try {
    await writeFile(file, `${randomBytes(8).toString('hex')}\n`, { flag: 'wx' })
  } catch (error) {
    // Another process made it first: theirs it is.
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
  }
  return read()
}

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b)
}

export function bucketManifests({
  shared,
  machine,
  legacy,
  machineId,
}: BucketManifestsOptions): ManifestRepository {
  async function machineParts(uuid: string): Promise<MachineParts> {
    return machinePartsOf(await machine.get(uuid))
  }

  const view = (manifest: PatchManifest | undefined, parts: MachineParts) =>
    manifest && { ...withoutMachineParts(manifest), ...parts }

  /** Records this machine's fields, field by field, so a concurrent writer's other field stays. */
  async function saveMachineParts(uuid: string, before: MachineParts, after: MachineParts) {
    if (same(before, after)) return
    await machine.update(uuid, (current) => {
      const parts = machinePartsOf(current)
      for (const field of MACHINE_FIELDS) {
        if (same(before[field], after[field])) continue
        if (after[field] === undefined) delete parts[field]
        else parts[field] = after[field]
      }
      if (Object.keys(parts).length === 0) return undefined
      return {
        uuid,
        patchedAt: current?.patchedAt ?? new Date().toISOString(),
        files: {},
        ...parts,
      }
    })
  }

  async function updateNow(
    uuid: string,
    fn: (current: PatchManifest | undefined) => PatchManifest | undefined,
  ): Promise<PatchManifest | undefined> {
    const before = await machineParts(uuid)
    // Read before the bucket's update: its updater must be synchronous.
    const [old, me] = await Promise.all([legacy.get(uuid), machineId?.()])
    let after: MachineParts = before
    let movedLegacy = false
    const next = await shared.update(uuid, (current) => {
      // A patch only this root knows (an older CLI's): the update starts from it, and moves it.
      const base = current ?? old
      movedLegacy = current === undefined && old !== undefined
      const seen = base && { ...withoutMachineParts(base), ...machinePartsOf(base), ...before }
      const result = fn(seen)
      after = machinePartsOf(result)
      if (!result) return undefined
      const bound = withoutMachineParts(result)
      // This machine's snapshot keys as of this update; the other machines' as they were.
      return me === undefined
        ? {
            ...bound,
            ...(current?.[SNAPSHOTS_FIELD] ? { [SNAPSHOTS_FIELD]: current[SNAPSHOTS_FIELD] } : {}),
          }
        : withSnapshots(bound, current?.[SNAPSHOTS_FIELD], me, snapshotKeysOf(uuid, after))
    })
    await saveMachineParts(uuid, before, after)
    if (movedLegacy) await legacy.delete(uuid)
    return view(next, after)
  }

  /** The manifest as the service sees it, given what the bucket holds. */
  async function compose(uuid: string, fromBucket: PatchManifest | undefined) {
    const parts = await machineParts(uuid)
    if (fromBucket) return view(fromBucket, parts)
    const old = await legacy.get(uuid)
    return old && { ...old, ...parts }
  }

  const lock = shared.withLock?.bind(shared)

  const repository: ManifestRepository = {
    async get(uuid) {
      return compose(uuid, await shared.get(uuid))
    },

    async update(uuid, fn) {
      // This machine's part is read before the bucket's update and saved after it: under the
      // bucket's lock, so two processes of this machine never both decide from the same part (two
      // restores would each see no journal, and the second would replace the first's).
      return lock ? lock(uuid, () => updateNow(uuid, fn)) : updateNow(uuid, fn)
    },

    async delete(uuid) {
      const [inBucket, inLegacy] = await Promise.all([shared.delete(uuid), legacy.delete(uuid)])
      await machine.delete(uuid)
      return inBucket || inLegacy
    },

    async list() {
      const [inBucket, inLegacy] = await Promise.all([shared.list(), legacy.list()])
      return [...new Set([...inBucket, ...inLegacy])].sort()
    },
  }
  if (lock) {
    // The bucket's lock of the patch, around the whole task: a backup's read, store write and
    // manifest write, or a cleanup's read, tombstone and key removals, never interleave with
    // another machine's (the service relies on it to never free what a backup recorded).
    repository.withLock = (uuid, task, options) =>
      lock(
        uuid,
        async (inner) => {
          let current = await compose(uuid, inner.current)
          return task({
            get current() {
              return current
            },
            async update(fn) {
              // Inside the lock: the bucket's update writes under it rather than waiting for it.
              current = await repository.update(uuid, fn)
              return current
            },
            verify: () => inner.verify(),
          })
        },
        options,
      )
  }
  return repository
}

/** What moving one older CLI's manifest into the bucket did (or, dry, would do). */
export interface MovedManifest {
  uuid: string
  files: number
  /** The bucket already had this patch: the files it lacked were added, its own entries kept. */
  merged: boolean
}

/**
 * Moves the manifest an older CLI kept under the root into the bucket: its entries go in as
 * keep-first adds (a patch the bucket already has keeps its own entries), its restore journal and
 * undo stay on this machine, and the local file goes only once the bucket has it.
 */
export async function moveLegacyManifest(
  { shared, machine, legacy, machineId }: BucketManifestsOptions,
  uuid: string,
  { dryRun = false }: { dryRun?: boolean } = {},
): Promise<MovedManifest | undefined> {
  const old = await legacy.get(uuid)
  if (!old) return undefined
  const local = withoutMachineParts(old)
  const files = Object.keys(local.files).length
  if (dryRun) return { uuid, files, merged: (await shared.get(uuid)) !== undefined }
  let merged = false
  const parts = machinePartsOf(old)
  const me = await machineId?.()
  await shared.update(uuid, (current) => {
    merged = current !== undefined
    const next = current ? { ...current, files: { ...local.files, ...current.files } } : local
    return me === undefined
      ? next
      : withSnapshots(next, current?.[SNAPSHOTS_FIELD], me, snapshotKeysOf(uuid, parts))
  })
  if (Object.keys(parts).length > 0) {
    await machine.update(uuid, (current) => ({
      uuid,
      patchedAt: old.patchedAt,
      files: {},
      ...parts,
      ...machinePartsOf(current),
    }))
  }
  await legacy.delete(uuid)
  return { uuid, files, merged }
}
