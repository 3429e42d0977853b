// Storage policies: prune, retention, size limits, and the usage, units and state they rely on.
// Policies remove whole patches only, never single entries, and never write the project's files.

import pMap from 'p-map'
import { PatchBackupError } from '../errors.js'
import { recordedContent } from '../maintenance/recorded-content.js'
import { removePatch } from '../maintenance/remove-patch.js'
import type { BackupStore, ManifestRepository, PatchManifest, StillNeeded } from '../types.js'
import { bytesOf, type ContentRef, ContentTally, contentsOf } from './usage.js'

export interface PruneOptions {
  /** Remove patches whose `patchedAt` is more than this many milliseconds before now. */
  olderThan?: number
  /** Then remove the oldest patches until all that remain hold at most this many bytes. */
  maxTotalBytes?: number
  /** Remove every patch that alone holds more than this many bytes. */
  maxPatchBytes?: number
  /**
   * Never remove the newest N patches. Given alone (no other rule), remove all but the newest N.
   */
  keepLast?: number
  /** Say what would go, remove nothing. */
  dryRun?: boolean
}

export type PruneReason = 'older-than' | 'max-patch-bytes' | 'max-total-bytes' | 'keep-last'

export interface PrunedPatch {
  uuid: string
  patchedAt: string
  files: number
  /**
   * Original bytes no remaining patch references once this one is gone (bytes shared with a
   * patch that stays are not counted; bytes shared only among removed patches count once).
   */
  bytes: number
  /** The same, as stored (after compression or encryption). */
  storedBytes: number
  reason: PruneReason
}

export interface PruneIssue {
  uuid: string
  code: string
  message: string
}

export interface PruneResult {
  dryRun: boolean
  /** Oldest first. */
  removed: PrunedPatch[]
  reclaimedBytes: number
  reclaimedStoredBytes: number
  /** Patches left, and the original bytes they hold (each distinct content once). */
  remainingPatches: number
  remainingBytes: number
  /**
   * Patches left alone: their manifest could not be read (`MANIFEST_CORRUPT`, …), changed while
   * pruning (`PATCH_CHANGED`) or was being written in this process (`PATCH_BUSY`).
   */
  skipped: PruneIssue[]
  /** Patches removed whose bytes the store could not free: `gc()` reclaims them later. */
  errors: PruneIssue[]
}

/** Internal: how the service narrows a prune it runs by itself. */
export interface PruneScope {
  /** Never remove these patches (the one a backup is writing). */
  exclude?: ReadonlySet<string>
  /** Leave patches that have an operation running or queued in this process. */
  skipBusy?: boolean
}

export type Exclusive = <T>(
  uuid: string,
  task: () => Promise<T>,
  skipBusy: boolean,
) => Promise<T> | undefined

export interface PrunerDeps {
  store: BackupStore
  manifests: ManifestRepository
  now: () => Date
  concurrency: number
  /** Runs `task` as the only mutation of `uuid` in this process; `undefined` if busy and `skipBusy`. */
  exclusive: Exclusive
  onRemoved?: (uuid: string) => void
}

export interface Pruner {
  prune(options?: PruneOptions, scope?: PruneScope): Promise<PruneResult>
}

interface Loaded {
  uuid: string
  manifest: PatchManifest
  json: string
  at: number
  contents: Map<string, ContentRef>
}

function describe(error: unknown): { code: string; message: string } {
  if (error instanceof PatchBackupError) return { code: error.code, message: error.message }
  return { code: 'STORE_ERROR', message: error instanceof Error ? error.message : String(error) }
}

function checkNumber(name: string, value: unknown, integer = false): void {
  if (value === undefined) return
  if (
    typeof value !== 'number' ||
    !Number.isFinite(value) ||
    value < 0 ||
    (integer && !Number.isInteger(value))
  ) {
    throw new PatchBackupError(
      'INVALID_OPTIONS',
      `prune: ${name} must be a non-negative ${integer ? 'integer' : 'number'}, got ${JSON.stringify(value)}.`,
    )
  }
}

/** Throws INVALID_OPTIONS unless `options` names something to prune by. */
export function checkPruneOptions(options: PruneOptions, what = 'prune'): void {
  if (typeof options !== 'object' || options === null) {
    throw new PatchBackupError('INVALID_OPTIONS', `${what} needs an options object.`)
  }
  checkNumber('olderThan', options.olderThan)
  checkNumber('maxTotalBytes', options.maxTotalBytes)
  checkNumber('maxPatchBytes', options.maxPatchBytes)
  checkNumber('keepLast', options.keepLast, true)
  const rules = [options.olderThan, options.maxTotalBytes, options.maxPatchBytes, options.keepLast]
  if (rules.every((rule) => rule === undefined)) {
    throw new PatchBackupError(
      'INVALID_OPTIONS',
      `${what} needs at least one of olderThan, maxTotalBytes, maxPatchBytes or keepLast.`,
    )
  }
}

export function createPruner(deps: PrunerDeps): Pruner {
  const { manifests, now, concurrency } = deps

  async function load(skipped: PruneIssue[]): Promise<Loaded[]> {
    const uuids = await manifests.list()
    const loaded = await pMap(
      uuids,
      async (uuid): Promise<Loaded | undefined> => {
        try {
          const manifest = await manifests.get(uuid)
          if (!manifest) return undefined
          const at = Date.parse(manifest.patchedAt)
          if (Number.isNaN(at)) {
            skipped.push({
              uuid,
              code: 'INVALID_MANIFEST',
              message: `Patch ${uuid} has no valid patchedAt (${JSON.stringify(manifest.patchedAt)}), so its age is unknown; it was left alone.`,
            })
            return undefined
          }
          return {
            uuid,
            manifest,
            json: JSON.stringify(manifest),
            at,
            contents: contentsOf(manifest),
          }
        } catch (error) {
          // An unreadable manifest may still reference bytes: it stays, and so do they.
          skipped.push({ uuid, ...describe(error) })
          return undefined
        }
      },
      { concurrency },
    )
    return loaded
      .filter((p): p is Loaded => p !== undefined)
      .sort((a, b) => a.at - b.at || (a.uuid < b.uuid ? -1 : a.uuid > b.uuid ? 1 : 0))
  }

  function select(patches: Loaded[], options: PruneOptions, scope: PruneScope) {
    const keep = new Set(scope.exclude ?? [])
    if (options.keepLast !== undefined && options.keepLast > 0) {
      for (const p of patches.slice(-options.keepLast)) keep.add(p.uuid)
    }
    const onlyKeepLast =
      options.olderThan === undefined &&
      options.maxPatchBytes === undefined &&
      options.maxTotalBytes === undefined
    const tally = new ContentTally()
    for (const p of patches) tally.add(p.contents)
    const victims = new Map<string, PruneReason>()
    const at = now().getTime()
    for (const p of patches) {
      if (keep.has(p.uuid)) continue
      const reason: PruneReason | undefined =
        options.olderThan !== undefined && at - p.at > options.olderThan
          ? 'older-than'
          : options.maxPatchBytes !== undefined && bytesOf(p.contents) > options.maxPatchBytes
            ? 'max-patch-bytes'
            : onlyKeepLast
              ? 'keep-last'
              : undefined
      if (!reason) continue
      victims.set(p.uuid, reason)
      tally.remove(p.contents)
    }
    if (options.maxTotalBytes !== undefined) {
      for (const p of patches) {
        if (tally.bytes <= options.maxTotalBytes) break
        if (keep.has(p.uuid) || victims.has(p.uuid)) continue
        victims.set(p.uuid, 'max-total-bytes')
        tally.remove(p.contents)
      }
    }
    return victims
  }

  /** Credits freed bytes to the removed patches, oldest first, against every patch loaded. */
  function account(
    patches: Loaded[],
    removed: Map<string, PruneReason>,
    vanished: Set<string>,
  ): Pick<
    PruneResult,
    'removed' | 'reclaimedBytes' | 'reclaimedStoredBytes' | 'remainingBytes' | 'remainingPatches'
  > {
    const tally = new ContentTally()
    for (const p of patches) tally.add(p.contents)
    for (const p of patches) if (vanished.has(p.uuid)) tally.remove(p.contents)
    const list: PrunedPatch[] = []
    let reclaimedBytes = 0
    let reclaimedStoredBytes = 0
    for (const p of patches) {
      const reason = removed.get(p.uuid)
      if (!reason) continue
      const freed = tally.remove(p.contents)
      reclaimedBytes += freed.bytes
      reclaimedStoredBytes += freed.storedBytes
      list.push({
        uuid: p.uuid,
        patchedAt: p.manifest.patchedAt,
        files: Object.keys(p.manifest.files ?? {}).length,
        bytes: freed.bytes,
        storedBytes: freed.storedBytes,
        reason,
      })
    }
    return {
      removed: list,
      reclaimedBytes,
      reclaimedStoredBytes,
      remainingPatches: patches.length - list.length - vanished.size,
      remainingBytes: tally.bytes,
    }
  }

  /** Removes the patch if its manifest is still the one judged, then frees its bytes. */
  async function removeIfUnchanged(
    p: Loaded,
    skipBusy: boolean,
    stillNeeded: StillNeeded,
    errors: PruneIssue[],
  ): Promise<'removed' | 'changed' | 'vanished' | 'busy'> {
    const run = deps.exclusive(
      p.uuid,
      async () => {
        // Skipping busy patches (quota pruning, inside another patch's lock): never wait for a
        // lock, so two processes pruning from inside their backups never wait on each other.
        const outcome = await removePatch(
          deps,
          p.uuid,
          (current) => JSON.stringify(current) === p.json,
          stillNeeded,
          { ifFree: skipBusy },
        ).catch((error: PatchBackupError) => {
          if (error.code === 'PATCH_BUSY') return undefined
          throw error
        })
        if (!outcome) return 'busy' as const
        if (!outcome.removed) return outcome.kept ? ('changed' as const) : ('vanished' as const)
        deps.onRemoved?.(p.uuid)
        if (outcome.failures.length > 0) {
          errors.push({
            uuid: p.uuid,
            code: 'STORE_ERROR',
            message: `Patch ${p.uuid} was removed, but the store could not free ${outcome.failures.length} file(s): ${outcome.failures.join('; ')}. Run 'patch-backup gc' to reclaim the space.`,
          })
        }
        return 'removed' as const
      },
      skipBusy,
    )
    return run ?? 'busy'
  }

  return {
    async prune(options = {}, scope = {}) {
      checkPruneOptions(options)
      const skipped: PruneIssue[] = []
      const errors: PruneIssue[] = []
      const patches = await load(skipped)
      const victims = select(patches, options, scope)
      if (options.dryRun) {
        return { dryRun: true, ...account(patches, victims, new Set()), skipped, errors }
      }
      const removed = new Map<string, PruneReason>()
      const vanished = new Set<string>()
      // Bytes the patches that stay record are kept even if no key points at them (see cleanupBackups).
      const stillNeeded = recordedContent(
        patches.filter((p) => !victims.has(p.uuid)).map((p) => p.manifest),
      )
      for (const p of patches) {
        const reason = victims.get(p.uuid)
        if (!reason) continue
        const outcome = await removeIfUnchanged(p, !!scope.skipBusy, stillNeeded, errors)
        if (outcome === 'removed') removed.set(p.uuid, reason)
        else if (outcome === 'vanished') vanished.add(p.uuid)
        else if (outcome === 'changed') {
          skipped.push({
            uuid: p.uuid,
            code: 'PATCH_CHANGED',
            message: `Patch ${p.uuid} changed while pruning (a backup added to it); it was left alone.`,
          })
        } else {
          skipped.push({
            uuid: p.uuid,
            code: 'PATCH_BUSY',
            message: `Patch ${p.uuid} was being written by this process; it was left alone.`,
          })
        }
      }
      return { dryRun: false, ...account(patches, removed, vanished), skipped, errors }
    },
  }
}
