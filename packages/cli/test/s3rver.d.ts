// s3rver ships no types; the tests use only this much of it.
declare module 's3rver' {
  import type { Server } from 'node:http'
  import type { AddressInfo } from 'node:net'

  interface S3rverOptions {
    address?: string
    port?: number
    silent?: boolean
    directory?: string
    resetOnClose?: boolean
    configureBuckets?: { name: string }[]
  }

  export default class S3rver {
    constructor(options: S3rverOptions)
    httpServer?: Server
    logger: { silent: boolean }
    run(): Promise<AddressInfo>
    close(): Promise<void>
  }
}
