import { mkdtemp, rm } from 'node:fs/promises'
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
      await rm(directory, { recursive: true, force: true })
    },
  }
}
