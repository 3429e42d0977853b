import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runBackupStoreSuite, runServiceSuite } from '@patch-backup/conformance'
import { createJsonManifestRepository } from '@patch-backup/manifest'
import { afterAll, beforeAll } from 'vitest'
import { createS3Fixture } from './fixture.js'
import { type S3TestServer, startS3Server } from './server.js'

let server: S3TestServer
beforeAll(async () => {
  server = await startS3Server()
})
afterAll(async () => {
  await server?.stop()
})

runBackupStoreSuite('s3', () => createS3Fixture(server))

runServiceSuite('s3 store + JSON manifests', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'pb-s3-manifests-'))
  return {
    store: createS3Fixture(server),
    manifests: {
      repo: createJsonManifestRepository({ dir }),
      async corrupt(uuid: string) {
        const file = join(dir, `${uuid}.json`)
        const json = await readFile(file, 'utf8')
        await writeFile(file, json.slice(0, Math.floor(json.length / 2)))
      },
      cleanup: () => rm(dir, { recursive: true, force: true }),
    },
  }
})
