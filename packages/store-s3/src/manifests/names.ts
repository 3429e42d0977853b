import { randomBytes } from 'node:crypto'

/*
 * Names of the manifest objects, under the repository's prefix:
 *
 *   <prefix>/manifests/<uuid>/<stamp>-<random>.json             a delta
 *   <prefix>/manifests/<uuid>/<stamp>-<random>.tomb.json        a delta that deletes the manifest
 *   <prefix>/manifests/<uuid>/<stamp>-<random>~snap.json        a snapshot (compaction's output)
 *   <prefix>/manifests/<uuid>/<stamp>-<random>~snap.tomb.json   a snapshot of a deleted manifest
 *
 * <stamp> is 13 decimal digits of milliseconds, so names sort by time; <random> is 16 hex digits,
 * so two writers never pick one name. A snapshot takes the <stamp>-<random> of the last object it
 * merged, so it sorts right after it and before anything written later. The `.tomb` mark lets
 * `list()` tell a deleted patch from its names alone: a patch is listed unless its last object is one.
 */

const STAMP_DIGITS = 13
const ID_LENGTH = STAMP_DIGITS + 1 + 16
const NAME = /^(\d{13})-[0-9a-f]{16}(~snap)?(\.tomb)?\.json$/

export interface ParsedName {
  /** Milliseconds in the writer's clock (or later: see `nextStamp`). */
  stamp: number
  snapshot: boolean
  tomb: boolean
}

/** What a name within a patch's folder says, or `undefined` for a name this repository never writes. */
export function parseName(name: string): ParsedName | undefined {
  const match = NAME.exec(name)
  if (!match) return undefined
  return { stamp: Number(match[1]), snapshot: match[2] !== undefined, tomb: match[3] !== undefined }
}

export function deltaName(stamp: number, tomb: boolean): string {
  const id = `${String(stamp).padStart(STAMP_DIGITS, '0')}-${randomBytes(8).toString('hex')}`
  return `${id}${tomb ? '.tomb' : ''}.json`
}

/** The snapshot that replaces objects up to `last` (a name within the folder). */
export function snapshotName(last: string, tomb: boolean): string {
  return `${last.slice(0, ID_LENGTH)}~snap${tomb ? '.tomb' : ''}.json`
}

/** A patch is deleted when the last of its objects (in name order) is a tombstone. */
export function endsDeleted(lastName: string): boolean {
  return parseName(lastName)?.tomb ?? false
}
