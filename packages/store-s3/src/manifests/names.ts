import { randomBytes } from 'node:crypto'

/*
 * Names of the manifest objects, under the repository's prefix:
 *
 *   <prefix>/manifests/<uuid>/<stamp>-<random>.json             a delta
 *   <prefix>/manifests/<uuid>/<stamp>-<random>.tomb.json        a delta that deletes the manifest
 *   <prefix>/manifests/<uuid>/<stamp>-<random>~snap<gen>-<unique>.json       a snapshot
 *   <prefix>/manifests/<uuid>/<stamp>-<random>~snap<gen>-<unique>.tomb.json  a snapshot of a deleted manifest
 *
 * <stamp> is 13 decimal digits of milliseconds, so names sort by time; <random> is 16 hex digits,
 * so two writers never pick one name. A snapshot takes the <stamp>-<random> of the last object it
 * merged, so it sorts right after it and before anything written later; <gen> (6 digits) is one
 * more than that of a snapshot it merged with the same <stamp>-<random>, so it sorts after the
 * snapshots it replaces; <unique> (8 hex digits) keeps two compactions that fold the same objects
 * from writing one name: an overwrite is not atomic on every server (s3rver's object vanishes
 * from listings while it is rewritten). The `.tomb` mark lets `list()` tell a deleted patch from
 * its names alone: a patch is listed unless its last object is one.
 */

const STAMP_DIGITS = 13
const ID_LENGTH = STAMP_DIGITS + 1 + 16
const NAME = /^(\d{13})-[0-9a-f]{16}(~snap(\d{6})-[0-9a-f]{8})?(\.tomb)?\.json$/

export interface ParsedName {
  /** Milliseconds in the writer's clock (or later: see `nextStamp`). */
  stamp: number
  snapshot: boolean
  /** A snapshot's generation among those named after the same object; -1 for a delta. */
  generation: number
  tomb: boolean
}

/** What a name within a patch's folder says, or `undefined` for a name this repository never writes. */
export function parseName(name: string): ParsedName | undefined {
  const match = NAME.exec(name)
  if (!match) return undefined
  return {
    stamp: Number(match[1]),
    snapshot: match[2] !== undefined,
    generation: Number(match[3] ?? -1),
    tomb: match[4] !== undefined,
  }
}

export function deltaName(stamp: number, tomb: boolean): string {
  const id = `${String(stamp).padStart(STAMP_DIGITS, '0')}-${randomBytes(8).toString('hex')}`
  return `${id}${tomb ? '.tomb' : ''}.json`
}

/** The snapshot that replaces `folded` (names within the folder, sorted; the last one decides). */
export function snapshotName(folded: readonly string[], tomb: boolean): string {
  const id = (folded.at(-1) ?? '').slice(0, ID_LENGTH)
  let generation = 0
  for (const name of folded) {
    if (name.startsWith(id))
      generation = Math.max(generation, (parseName(name)?.generation ?? -1) + 1)
  }
  const unique = randomBytes(4).toString('hex')
  return `${id}~snap${String(generation).padStart(6, '0')}-${unique}${tomb ? '.tomb' : ''}.json`
}

/** A patch is deleted when the last of its objects (in name order) is a tombstone. */
export function endsDeleted(lastName: string): boolean {
  return parseName(lastName)?.tomb ?? false
}
