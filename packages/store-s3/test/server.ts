/// <reference path="./s3rver.d.ts" />
// Also used by the cli's tests (packages/cli/test/bin-s3.test.ts): one s3rver helper for both.
import { mkdtemp, readdir, rm } from 'node:fs/promises'
import type { Server } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { S3Client, type S3ClientConfig } from '@aws-sdk/client-s3'
import S3rver from 's3rver'

/** s3rver takes any signature made with these. */
export const CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' }
export const BUCKET = 'patch-backups'

export interface S3TestServer {
  /** `http://127.0.0.1:<port>` */
  endpoint: string
  bucket: string
  /** Where s3rver keeps the bucket's objects, to check what went up. */
  directory: string
  /** What a spawned bin needs to reach this server: endpoint and dummy credentials. */
  env: NodeJS.ProcessEnv
  /** Every object name in the bucket (s3rver keeps each as a directory of files). */
  objects(): Promise<string[]>
  /** A client for this server, configured as a self-hosted server needs. */
  client(config?: S3ClientConfig): S3Client
  /** The HTTP server itself, to watch its requests. */
  httpServer(): Server
  /** Stops accepting connections and cuts the open ones, as a crashed server would. */
  kill(): Promise<void>
  /** Stops the server and deletes its files. */
  stop(): Promise<void>
}

/** A real S3-compatible server (s3rver) on 127.0.0.1, on a free port, storing in a temp dir. */
export async function startS3Server(): Promise<S3TestServer> {
  const directory = await mkdtemp(join(tmpdir(), 'pb-s3rver-'))
  const server = new S3rver({
    address: '127.0.0.1',
    port: 0,
    silent: true,
    directory,
    configureBuckets: [{ name: BUCKET }],
  })
  const { port } = await server.run()
  // `silent` only mutes the console transport; this also mutes winston's complaint about requests
  // that finish after close() took the transports away.
  server.logger.silent = true
  const endpoint = `http://127.0.0.1:${port}`
  const clients: S3Client[] = []
  let running = true
  const kill = async () => {
    if (!running) return
    running = false
    const closed = server.close()
    server.httpServer?.closeAllConnections()
    await closed
  }
  return {
    endpoint,
    bucket: BUCKET,
    directory,
    env: {
      AWS_ENDPOINT_URL: endpoint,
      AWS_ACCESS_KEY_ID: CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: CREDENTIALS.secretAccessKey,
      AWS_REGION: 'us-east-1',
    },
    async objects() {
      const entries = await readdir(join(directory, BUCKET), { recursive: true })
      return entries
        .filter((e) => e.endsWith('._S3rver_object'))
        .map((e) => e.slice(0, -'._S3rver_object'.length))
        .sort()
    },
    client(config = {}) {
      const client = new S3Client({
        endpoint,
        region: 'us-east-1',
        forcePathStyle: true,
        credentials: CREDENTIALS,
        requestChecksumCalculation: 'WHEN_REQUIRED',
        responseChecksumValidation: 'WHEN_REQUIRED',
        ...config,
      })
      clients.push(client)
      return client
    },
    httpServer() {
      if (!server.httpServer) throw new Error('s3rver is not running')
      return server.httpServer
    },
    kill,
    async stop() {
      await kill()
      for (const client of clients) client.destroy()
      // Retries: a request the server was still handling when it closed may add a file meanwhile.
      await rm(directory, { recursive: true, force: true, maxRetries: 5 })
    },
  }
}
