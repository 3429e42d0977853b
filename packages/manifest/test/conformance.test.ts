import { writeFile } from 'node:fs/promises'
import { runManifestRepositorySuite } from '@patch-backup/conformance'
import { createJsonManifestRepository } from '../src/index.js'
import { tempRoot } from './helpers.js'

runManifestRepositorySuite('json', async () => {
  const { dir, dispose } = await tempRoot()
  const repo = createJsonManifestRepository({ dir })
  return {
    repo,
    // Cut the file mid-document, as a crash during a non-atomic write would.
    corrupt: (uuid) => writeFile(repo.manifestPath(uuid), '{ "uuid": "'),
    cleanup: dispose,
  }
})
