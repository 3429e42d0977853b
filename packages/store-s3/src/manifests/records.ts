import type { BackupInfo, PatchManifest } from '@patch-backup/core'

/*
 * What one manifest object in the bucket holds, and how readers merge them. This file owns the
 * format and the merge rule; it touches no bucket (see repository.ts for the requests).
 *
 * A patch's manifest is never rewritten in place: each `update` records what it changed as a new
 * immutable object (a delta), and compaction folds old ones into a snapshot. Every reader applies
 * the same objects in the same order (their names), so every reader computes the same manifest.
 */

/** One change to a manifest, with the intent the merge needs when writers raced. */
export type ManifestOp =
  /** The manifest is gone (cleanup, prune, an updater that returned `undefined`). */
  | { op: 'delete' }
  /** A top-level field other than `files` and `uuid` set to a value; later wins. */
  | { op: 'field'; name: string; value: unknown }
  | { op: 'unset'; name: string }
  /** A file the writer saw without an entry: keep-first, the first `add` in name order wins. */
  | { op: 'add'; path: string; entry: BackupInfo }
  /** A file whose entry the writer replaced (an overwrite, a restore's bookkeeping): later wins. */
  | { op: 'set'; path: string; entry: BackupInfo }
  | { op: 'remove'; path: string }

export const DELTA_FORMAT = 'patch-backup/manifest-delta@1'
export const SNAPSHOT_FORMAT = 'patch-backup/manifest-snapshot@1'

export interface DeltaRecord {
  format: typeof DELTA_FORMAT
  uuid: string
  /** The writer's clock when it wrote this, ISO. `patchedAt` of a manifest it (re)creates without `init`. */
  at: string
  /** The manifest's top-level fields (all but `files`), used only if it does not exist when applied. */
  init?: Record<string, unknown>
  ops: ManifestOp[]
}

export interface SnapshotRecord {
  format: typeof SNAPSHOT_FORMAT
  uuid: string
  at: string
  /** The manifest after every merged object, or `null` when that left it deleted. */
  state: PatchManifest | null
  /** The names (within the patch's folder) of the objects this one replaces. */
  merged: string[]
}

export type ManifestRecord = DeltaRecord | SnapshotRecord

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function isEntry(value: unknown): value is BackupInfo {
  return isObject(value) && typeof value.integrity === 'string' && typeof value.size === 'number'
}

function isOp(value: unknown): value is ManifestOp {
  if (!isObject(value)) return false
  switch (value.op) {
    case 'delete':
      return true
    case 'field':
      return typeof value.name === 'string' && 'value' in value
    case 'unset':
    case 'remove':
      return typeof (value.op === 'unset' ? value.name : value.path) === 'string'
    case 'add':
    case 'set':
      return typeof value.path === 'string' && isEntry(value.entry)
    default:
      return false
  }
}

function isManifest(value: unknown, uuid: string): value is PatchManifest {
  return isObject(value) && value.uuid === uuid && isObject(value.files)
}

/** Parses one object's text; `undefined` when it is not a record of this patch (the caller says MANIFEST_CORRUPT). */
export function parseRecord(text: string, uuid: string): ManifestRecord | undefined {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return undefined
  }
  if (!isObject(value) || value.uuid !== uuid || typeof value.at !== 'string') return undefined
  if (value.format === DELTA_FORMAT) {
    if (!Array.isArray(value.ops) || !value.ops.every(isOp)) return undefined
    if (value.init !== undefined && !isObject(value.init)) return undefined
    return value as unknown as DeltaRecord
  }
  if (value.format === SNAPSHOT_FORMAT) {
    const { state, merged } = value
    if (state !== null && !isManifest(state, uuid)) return undefined
    if (!Array.isArray(merged) || !merged.every((n) => typeof n === 'string')) return undefined
    return value as unknown as SnapshotRecord
  }
  return undefined
}

/** Structural equality of JSON values (key order ignored). */
export function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false
    return a.every((item, i) => sameJson(item, b[i]))
  }
  if (!isObject(a) || !isObject(b)) return false
  const keys = Object.keys(a).filter((k) => a[k] !== undefined)
  if (keys.length !== Object.keys(b).filter((k) => b[k] !== undefined).length) return false
  return keys.every((k) => sameJson(a[k], b[k]))
}

/** Fields `field` ops may not touch: `files` has its own ops and `uuid` is the folder's. */
const FIXED = new Set(['files', 'uuid'])

/**
 * The delta that turns `current` into `next`, as the ops the merge applies; `undefined` when
 * nothing changed. A file `current` had no entry for becomes `add` (keep-first), one whose entry
 * changed becomes `set` (later wins): the intent of the service's updaters, read from their result.
 */
export function diffManifests(
  uuid: string,
  current: PatchManifest | undefined,
  next: PatchManifest | undefined,
  at: string,
): DeltaRecord | undefined {
  const record: DeltaRecord = { format: DELTA_FORMAT, uuid, at, ops: [] }
  if (next === undefined) {
    if (current === undefined) return undefined
    record.ops.push({ op: 'delete' })
    return record
  }
  if (current === undefined) {
    // A manifest this writer creates: its fields only count if nobody created it first.
    const { files: _files, ...init } = next
    record.init = { ...init, uuid }
  } else {
    for (const [name, value] of Object.entries(next)) {
      if (FIXED.has(name) || value === undefined) continue
      if (!sameJson(current[name], value)) record.ops.push({ op: 'field', name, value })
    }
    for (const name of Object.keys(current)) {
      if (!FIXED.has(name) && current[name] !== undefined && next[name] === undefined) {
        record.ops.push({ op: 'unset', name })
      }
    }
  }
  const before = current?.files ?? {}
  for (const [path, entry] of Object.entries(next.files)) {
    const old = before[path]
    if (old === undefined) record.ops.push({ op: 'add', path, entry })
    else if (!sameJson(old, entry)) record.ops.push({ op: 'set', path, entry })
  }
  for (const path of Object.keys(before)) {
    if (!(path in next.files)) record.ops.push({ op: 'remove', path })
  }
  if (record.ops.length === 0 && current !== undefined) return undefined
  return record
}

function applyDelta(state: PatchManifest | undefined, record: DeltaRecord) {
  let m = state
  const ensure = (): PatchManifest => {
    m ??= { patchedAt: record.at, ...(record.init ?? {}), uuid: record.uuid, files: {} }
    return m
  }
  // A delta that created the manifest and changed nothing else still creates it.
  if (record.init && record.ops.length === 0) ensure()
  for (const op of record.ops) {
    switch (op.op) {
      case 'delete':
        m = undefined
        break
      case 'field':
        if (!FIXED.has(op.name)) ensure()[op.name] = op.value
        break
      case 'unset':
        if (!FIXED.has(op.name)) delete ensure()[op.name]
        break
      case 'add': {
        const files = ensure().files
        if (!Object.hasOwn(files, op.path)) files[op.path] = op.entry
        break
      }
      case 'set':
        ensure().files[op.path] = op.entry
        break
      case 'remove':
        delete ensure().files[op.path]
        break
    }
  }
  return m
}

/**
 * Merges a patch's objects, given as `[name, record]` sorted by name, into its manifest. Objects
 * a snapshot lists as merged are skipped (a compaction that has not deleted them yet); the last
 * snapshot is the base, and every other delta is applied on top of it in name order. In normal
 * operation every delta left sorts after that snapshot, so this is plain name order; a delta that
 * sorts before it (a writer slower than the compaction margin) is still applied, not lost.
 */
export function foldRecords(
  records: readonly (readonly [string, ManifestRecord])[],
): PatchManifest | undefined {
  const covered = new Set<string>()
  for (const [, record] of records) {
    if (record.format === SNAPSHOT_FORMAT) for (const name of record.merged) covered.add(name)
  }
  const live = records.filter(([name]) => !covered.has(name))
  let base: SnapshotRecord | undefined
  for (const [, record] of live) if (record.format === SNAPSHOT_FORMAT) base = record
  // Copies: the records are cached and shared, the result goes to callers.
  let state: PatchManifest | undefined = base?.state ? structuredClone(base.state) : undefined
  for (const [, record] of live) {
    if (record.format !== DELTA_FORMAT) continue
    state = applyDelta(state, structuredClone(record))
  }
  return state
}
