import type { PatchManifest } from '../types.js'

/** One distinct content a patch references: its original size and what the store keeps for it. */
export interface ContentRef {
  size: number
  storedSize: number
}

const sizeOf = (value: unknown): number =>
  typeof value === 'number' && Number.isFinite(value) && value >= 0 ? value : 0

/** The distinct contents (by integrity) a manifest references. */
export function contentsOf(manifest: PatchManifest): Map<string, ContentRef> {
  const contents = new Map<string, ContentRef>()
  for (const entry of Object.values(manifest.files ?? {})) {
    if (typeof entry?.integrity !== 'string' || contents.has(entry.integrity)) continue
    const size = sizeOf(entry.size)
    const stored = entry.storedSize === undefined ? size : sizeOf(entry.storedSize)
    contents.set(entry.integrity, { size, storedSize: stored })
  }
  return contents
}

export function bytesOf(contents: Map<string, ContentRef>): number {
  let bytes = 0
  for (const ref of contents.values()) bytes += ref.size
  return bytes
}

/**
 * Reference counts of contents across patches: `bytes` is the sum of the sizes of the distinct
 * contents still referenced, so shared bytes count once.
 */
export class ContentTally {
  private readonly refs = new Map<string, ContentRef & { count: number }>()
  bytes = 0
  storedBytes = 0

  add(contents: Map<string, ContentRef>): void {
    for (const [integrity, ref] of contents) {
      const known = this.refs.get(integrity)
      if (known) {
        known.count++
        continue
      }
      this.refs.set(integrity, { ...ref, count: 1 })
      this.bytes += ref.size
      this.storedBytes += ref.storedSize
    }
  }

  /** Drops one patch's references; answers what no patch references any more. */
  remove(contents: Map<string, ContentRef>): { bytes: number; storedBytes: number } {
    const freed = { bytes: 0, storedBytes: 0 }
    for (const integrity of contents.keys()) {
      const known = this.refs.get(integrity)
      if (!known) continue
      if (--known.count > 0) continue
      this.refs.delete(integrity)
      this.bytes -= known.size
      this.storedBytes -= known.storedSize
      freed.bytes += known.size
      freed.storedBytes += known.storedSize
    }
    return freed
  }
}
