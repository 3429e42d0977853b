import { randomUUID } from 'node:crypto'
import { PutObjectCommand } from '@aws-sdk/client-s3'
import { runManifestRepositorySuite, runServiceSuite } from '@patch-backup/conformance'
import { afterAll, beforeAll } from 'vitest'
import { createS3ManifestRepository, openBucket, openS3Repository } from '../src/index.js'
import { createS3Fixture } from './fixture.js'
import { type S3TestServer, startS3Server } from './server.js'

let server: S3TestServer
beforeAll(async () => {
  server = await startS3Server()
})
afterAll(async () => {
  await server?.stop()
})

/** Truncates the newest object of a patch, as a hand edit gone wrong would. */
async function corruptNewest(server: S3TestServer, root: string, uuid: string) {
  const client = server.client()
  const bucket = openBucket(client, server.bucket)
  const names: string[] = []
  for await (const name of bucket.list(`${root}${uuid}/`)) names.push(name)
  const newest = names.sort().at(-1)
  if (!newest) throw new Error(`no manifest object for ${uuid}`)
  const text = (await bucket.readText(newest)) ?? ''
  await client.send(
    new PutObjectCommand({ Bucket: server.bucket, Key: newest, Body: text.slice(0, 10) }),
  )
}

runManifestRepositorySuite('s3', () => {
  const repo = createS3ManifestRepository({
    client: server.client(),
    bucket: server.bucket,
    prefix: `m/${randomUUID()}`,
  })
  return { repo, corrupt: (uuid) => corruptNewest(server, repo.root, uuid) }
})

runServiceSuite('s3 repository (store + manifests in the bucket)', () => {
  const prefix = `r/${randomUUID()}`
  const store = createS3Fixture(server, { prefix, orphanGraceMs: 0 })
  const { manifests } = openS3Repository({
    client: store.store.client,
    bucket: server.bucket,
    prefix,
  })
  return {
    store,
    manifests: { repo: manifests, corrupt: (uuid) => corruptNewest(server, manifests.root, uuid) },
  }
})
