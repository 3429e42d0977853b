import type Cacache from 'cacache'

let loading: Promise<typeof Cacache> | undefined

/**
 * cacache, imported at its first use. Its module graph (@npmcli/fs and semver, glob, minipass,
 * lru-cache: about 80 CommonJS files) is most of what a CLI start-up would load, and only index
 * lookups, removals, listings and gc need it: the put path writes content and references itself.
 */
export function loadCacache(): Promise<typeof Cacache> {
  loading ??= import('cacache').then((m) => m.default)
  return loading
}
