import type { Readable } from 'node:stream'
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsCommand,
  PutObjectCommand,
  type S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3'

/** A part's ETag, and its CRC32 when the client sends checksums. */
export interface UploadedPart {
  ETag: string
  ChecksumCRC32?: string
}

/** The handful of S3 calls the store makes, on one bucket. "Not there" is a return value. */
export interface Bucket {
  readonly client: S3Client
  readonly name: string
  /** The size of an object, or `undefined` when there is none. */
  size(name: string): Promise<number | undefined>
  /** The body of an object as a stream, or `undefined` when there is none. */
  read(name: string): Promise<Readable | undefined>
  readText(name: string): Promise<string | undefined>
  /** Writes an object whole (one PutObject); resolves its ETag when the server gives one. */
  write(name: string, body: Uint8Array | string): Promise<string | undefined>
  /** Starts a multipart upload to `name`; resolves its upload id. */
  startMultipart(name: string): Promise<string>
  /** Sends one part (numbered from 1); resolves what CompleteMultipartUpload needs of it. */
  uploadPart(
    name: string,
    uploadId: string,
    partNumber: number,
    body: Uint8Array,
  ): Promise<UploadedPart>
  /** Joins the parts, given in part order, into the object `name`. */
  completeMultipart(name: string, uploadId: string, parts: readonly UploadedPart[]): Promise<void>
  abortMultipart(name: string, uploadId: string): Promise<void>
  /** Server-side copy (up to 5 GiB, S3's limit for one CopyObject). Resolves `false` when `from` is gone. */
  copy(from: string, to: string): Promise<boolean>
  /** `copy`, resolving the new object's ETag (`''` when the server gave none), or `undefined` when `from` is gone. */
  copyTagged(from: string, to: string): Promise<string | undefined>
  /** Deletes an object; deleting one that is not there is fine. */
  delete(name: string): Promise<void>
  /** The first object name under `prefix`, or `undefined`: one request, whatever is under it. */
  first(prefix: string): Promise<string | undefined>
  /** Every object name under `prefix`, a page at a time. */
  list(prefix: string): AsyncGenerator<string>
  /** Every object under `prefix` with the server's time of its last write, a page (up to 1000) per request. */
  listDetailed(prefix: string): AsyncGenerator<ListedObject>
}

export interface ListedObject {
  name: string
  /** When the server says the object was written; `undefined` if it did not say. */
  lastModified?: Date
  /** The object's ETag: changes whenever its bytes are replaced. */
  etag?: string
}

function isNotFound(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false
  const { name, $metadata } = error as { name?: string; $metadata?: { httpStatusCode?: number } }
  if (name === 'NoSuchKey' || name === 'NotFound') return true
  return $metadata?.httpStatusCode === 404 && name !== 'NoSuchBucket'
}

function orUndefined(error: unknown): undefined {
  if (isNotFound(error)) return undefined
  throw error
}

/** `x-amz-copy-source` is `<bucket>/<key>`, URL-encoded segment by segment. */
function copySource(bucket: string, name: string): string {
  return [bucket, ...name.split('/')].map(encodeURIComponent).join('/')
}

export function openBucket(client: S3Client, bucket: string): Bucket {
  const Bucket = bucket
  // As lib-storage does: with the SDK's default (WHEN_SUPPORTED) every part carries a CRC32, and S3
  // then wants the upload started with that algorithm and each part's checksum on completion.
  // The client's setting does not change: asked once, on the first multipart upload.
  let checksums: Promise<{ ChecksumAlgorithm?: 'CRC32' }> | undefined
  const crc32 = () => {
    checksums ??= client.config
      .requestChecksumCalculation()
      .then((when) => (when === 'WHEN_SUPPORTED' ? { ChecksumAlgorithm: 'CRC32' as const } : {}))
    return checksums
  }
  async function* listDetailed(prefix: string): AsyncGenerator<ListedObject> {
    // ListObjects (v1), paged by the last name seen (Marker): the same on S3, and s3rver answers
    // every truncated ListObjectsV2 with a 500, since its continuation tokens need DES, which
    // OpenSSL 3 (Node 17+) no longer offers.
    let after: string | undefined
    for (;;) {
      const page = await client.send(
        new ListObjectsCommand({ Bucket, Prefix: prefix, Marker: after }),
      )
      for (const item of page.Contents ?? []) {
        if (item.Key === undefined) continue
        after = item.Key
        yield { name: item.Key, lastModified: item.LastModified, etag: item.ETag }
      }
      if (!page.IsTruncated || !page.Contents?.length) return
    }
  }
  async function copyTagged(from: string, to: string): Promise<string | undefined> {
    const copied = await client
      .send(new CopyObjectCommand({ Bucket, Key: to, CopySource: copySource(bucket, from) }))
      .catch(orUndefined)
    return copied && (copied.CopyObjectResult?.ETag ?? '')
  }
  return {
    client,
    name: bucket,
    async size(name) {
      const head = await client
        .send(new HeadObjectCommand({ Bucket, Key: name }))
        .catch(orUndefined)
      return head ? (head.ContentLength ?? 0) : undefined
    },
    async read(name) {
      const got = await client.send(new GetObjectCommand({ Bucket, Key: name })).catch(orUndefined)
      // In Node the SDK's body is an http.IncomingMessage: a Readable.
      return got?.Body as Readable | undefined
    },
    async readText(name) {
      const got = await client.send(new GetObjectCommand({ Bucket, Key: name })).catch(orUndefined)
      return got?.Body?.transformToString('utf8')
    },
    async write(name, body) {
      // A Buffer, never '': the SDK sends no content-length for an empty string.
      const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body
      const put = await client.send(new PutObjectCommand({ Bucket, Key: name, Body: bytes }))
      return put.ETag
    },
    async startMultipart(name) {
      const started = await client.send(
        new CreateMultipartUploadCommand({ Bucket, Key: name, ...(await crc32()) }),
      )
      if (!started.UploadId) throw new Error(`CreateMultipartUpload of ${name} gave no upload id`)
      return started.UploadId
    },
    async uploadPart(name, uploadId, partNumber, body) {
      const sent = await client.send(
        new UploadPartCommand({
          Bucket,
          Key: name,
          UploadId: uploadId,
          PartNumber: partNumber,
          Body: body,
          ...(await crc32()),
        }),
      )
      if (!sent.ETag) throw new Error(`UploadPart ${partNumber} of ${name} gave no ETag`)
      const part: UploadedPart = { ETag: sent.ETag }
      if (sent.ChecksumCRC32) part.ChecksumCRC32 = sent.ChecksumCRC32
      return part
    },
    async completeMultipart(name, uploadId, parts) {
      await client.send(
        new CompleteMultipartUploadCommand({
          Bucket,
          Key: name,
          UploadId: uploadId,
          MultipartUpload: { Parts: parts.map((part, i) => ({ ...part, PartNumber: i + 1 })) },
        }),
      )
    },
    async abortMultipart(name, uploadId) {
      await client.send(new AbortMultipartUploadCommand({ Bucket, Key: name, UploadId: uploadId }))
    },
    async copy(from, to) {
      return (await copyTagged(from, to)) !== undefined
    },
    copyTagged,
    async delete(name) {
      await client.send(new DeleteObjectCommand({ Bucket, Key: name })).catch(orUndefined)
    },
    async first(prefix) {
      // v1 for the reason given in listDetailed: with more than one name, the page is truncated.
      const page = await client.send(new ListObjectsCommand({ Bucket, Prefix: prefix, MaxKeys: 1 }))
      return page.Contents?.[0]?.Key
    },
    async *list(prefix) {
      for await (const item of listDetailed(prefix)) yield item.name
    },
    listDetailed,
  }
}
