import type { PatchManifest, StillNeeded } from '../types.js'

/** Each hash of an SRI string, without options: `sha256-a sha512-b?x` -> `sha256-a`, `sha512-b`. */
function hashes(integrity: string): string[] {
  return integrity
    .trim()
    .split(/\s+/)
    .map((part) => part.split('?')[0] ?? '')
    .filter((part) => part.length > 0)
}

/**
 * The bytes the manifests record. Freeing asks it, not only the store's keys: after an `overwrite`
 * backup whose manifest write failed (lock timeout, full disk) or was killed, the key points at
 * the new bytes while the manifest still records the old ones, and those must stay.
 */
export function recordedContent(manifests: Iterable<PatchManifest | undefined>): StillNeeded {
  const recorded = new Set<string>()
  for (const manifest of manifests) {
    for (const entry of Object.values(manifest?.files ?? {})) {
      if (typeof entry?.integrity === 'string')
        for (const h of hashes(entry.integrity)) recorded.add(h)
    }
  }
  return (integrity) => hashes(integrity).some((h) => recorded.has(h))
}
