import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { runServiceSuite } from '@patch-backup/conformance'
import { createJsonManifestRepository } from '@patch-backup/manifest'
import { createCacacheStore } from '@patch-backup/store-cacache'
import { cacheFixtureHooks, manifestFixtureHooks } from './hooks.js'

runServiceSuite('cacache store + JSON manifests', async () => {
  const root = await mkdtemp(path.join(os.tmpdir(), 'pb-real-'))
  const cache = path.join(root, '_cacache')
  const manifests = path.join(root, '_patches', 'manifests')
  return {
    store: {
      store: createCacacheStore({ path: cache }),
      ...cacheFixtureHooks(cache),
      cleanup: () => rm(root, { recursive: true, force: true }),
    },
    manifests: {
      repo: createJsonManifestRepository({ dir: manifests }),
      ...manifestFixtureHooks(manifests),
    },
  }
})
