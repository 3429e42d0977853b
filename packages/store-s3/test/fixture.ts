import { randomUUID } from 'node:crypto'
import type { Readable } from 'node:stream'
import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3'
import type { StoreFixture } from '@patch-backup/conformance'
import {
  contentAddressOf,
  createS3Store,
  openBucket,
  type S3Store,
  type S3StoreOptions,
} from '../src/index.js'
import type { S3TestServer } from './server.js'

export interface S3Fixture extends StoreFixture {
  store: S3Store
  /** The content object's name for `integrity`. */
  contentName: (integrity: string) => string
  /** The stored bytes of the content object (small ones only: read whole). */
  readContent: (integrity: string) => Promise<Buffer>
  corrupt: (integrity: string) => Promise<void>
  lose: (integrity: string) => Promise<void>
  holdsContent: (integrity: string) => Promise<boolean>
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of stream) chunks.push(Buffer.from(chunk))
  return Buffer.concat(chunks)
}

/**
 * An S3 store on the test server under a fresh prefix (so fixtures never see each other's
 * objects), with hooks that change its objects through the SDK, behind the store's back.
 */
export function createS3Fixture(
  server: S3TestServer,
  options: Partial<S3StoreOptions> = {},
): S3Fixture {
  const client = server.client()
  const Bucket = server.bucket
  const store = createS3Store({ client, bucket: Bucket, prefix: `t/${randomUUID()}`, ...options })
  const contentName = (integrity: string) => {
    const address = contentAddressOf(integrity)
    if (!address) throw new Error(`no address for ${integrity}`)
    return store.names.content(address)
  }
  const readContent = async (integrity: string) => {
    const got = await client.send(new GetObjectCommand({ Bucket, Key: contentName(integrity) }))
    return readAll(got.Body as Readable)
  }
  const bucket = openBucket(client, Bucket)
  const put = (integrity: string, body: Uint8Array) =>
    client.send(new PutObjectCommand({ Bucket, Key: contentName(integrity), Body: body }))
  return {
    store,
    contentName,
    readContent,
    async corrupt(integrity) {
      const bytes = await readContent(integrity)
      if (bytes.length === 0) {
        await put(integrity, Buffer.from([0]))
        return
      }
      const middle = Math.floor(bytes.length / 2)
      bytes[middle] = (bytes[middle] ?? 0) ^ 0xff
      await put(integrity, bytes)
    },
    async lose(integrity) {
      await client.send(new DeleteObjectCommand({ Bucket, Key: contentName(integrity) }))
    },
    async holdsContent(integrity) {
      // The content object, or a copy a remover parked and left behind.
      const address = contentAddressOf(integrity)
      if (!address) return false
      if ((await bucket.size(store.names.content(address))) !== undefined) return true
      return (await bucket.first(store.names.trashPrefix(address))) !== undefined
    },
  }
}
