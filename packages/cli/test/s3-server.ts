import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import S3rver from 's3rver'

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
  stop(): Promise<void>
}

/** A real S3-compatible server (s3rver) on 127.0.0.1, on a free port, storing in a temp dir. */
export async function startS3Server(): Promise<S3TestServer> {
  const directory = await mkdtemp(join(tmpdir(), 'pb-cli-s3rver-'))
  const server = new S3rver({
    address: '127.0.0.1',
    port: 0,
    silent: true,
    directory,
    configureBuckets: [{ name: BUCKET }],
  })
  const { port } = await server.run()
  // `silent` only mutes the console transport; this also mutes winston's complaint about
  // requests that finish after close() took the transports away.
  server.logger.silent = true
  const endpoint = `http://127.0.0.1:${port}`
  return {
    endpoint,
    bucket: BUCKET,
    directory,
    env: {
      AWS_ENDPOINT_URL: endpoint,
      AWS_ACCESS_KEY_ID: 'S3RVER',
      AWS_SECRET_ACCESS_KEY: 'S3RVER',
      AWS_REGION: 'us-east-1',
    },
    async objects() {
      const entries = await readdir(join(directory, BUCKET), { recursive: true })
      return entries
        .filter((e) => e.endsWith('._S3rver_object'))
        .map((e) => e.slice(0, -'._S3rver_object'.length))
        .sort()
    },
    async stop() {
      const closed = server.close()
      server.httpServer?.closeAllConnections()
      await closed
      await rm(directory, { recursive: true, force: true })
    },
  }
}
