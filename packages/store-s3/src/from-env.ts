import { S3Client, type S3ClientConfig } from '@aws-sdk/client-s3'
import { PatchBackupError } from '@patch-backup/core'
import { createS3Store, type S3Store, type S3StoreOptions } from './store.js'

export interface S3ClientFromEnvOptions {
  /**
   * URL of an S3-compatible server, e.g. `http://127.0.0.1:9000`. Default: `AWS_ENDPOINT_URL_S3`,
   * then `AWS_ENDPOINT_URL`, then AWS S3 itself.
   */
  endpoint?: string
  /**
   * Default: `AWS_REGION`, then `AWS_DEFAULT_REGION`, then the profile's region (`~/.aws/config`);
   * with a custom endpoint and none of these, `us-east-1` (what MinIO and s3rver expect).
   */
  region?: string
  /** Path-style URLs (`<endpoint>/<bucket>/<key>`). Default: on with a custom endpoint, off for AWS. */
  forcePathStyle?: boolean
  /** Any other S3Client setting (credentials, retries, request handler…), applied last. */
  clientConfig?: S3ClientConfig
  /** Where the variables above are read from. Default: `process.env`. */
  env?: Record<string, string | undefined>
}

export interface S3StoreFromEnvOptions
  extends S3ClientFromEnvOptions,
    Omit<S3StoreOptions, 'client'> {}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value.trim()
}

/**
 * An S3Client configured the standard AWS way: credentials from the SDK's default chain
 * (`AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`, `AWS_PROFILE`, SSO, instance roles…), region and
 * endpoint from the options or the environment, path-style URLs for self-hosted servers.
 *
 * With a custom endpoint, the SDK's optional CRC checksums are sent and checked only where S3
 * requires them (`WHEN_REQUIRED`), unless `AWS_REQUEST_CHECKSUM_CALCULATION` /
 * `AWS_RESPONSE_CHECKSUM_VALIDATION` say otherwise: many self-hosted servers (s3rver, older MinIO)
 * do not understand the SDK's default, and the store checks sha256 of every byte it reads anyway.
 */
export function createS3ClientFromEnv(options: S3ClientFromEnvOptions = {}): S3Client {
  const env = options.env ?? process.env
  const endpoint =
    nonEmpty(options.endpoint) ??
    nonEmpty(env.AWS_ENDPOINT_URL_S3) ??
    nonEmpty(env.AWS_ENDPOINT_URL)
  if (endpoint !== undefined) {
    try {
      new URL(endpoint)
    } catch {
      throw new PatchBackupError(
        'INVALID_OPTIONS',
        `The S3 endpoint ${JSON.stringify(endpoint)} is not a URL (expected e.g. http://127.0.0.1:9000).`,
      )
    }
  }
  const custom = endpoint !== undefined
  const region =
    nonEmpty(options.region) ??
    nonEmpty(env.AWS_REGION) ??
    nonEmpty(env.AWS_DEFAULT_REGION) ??
    (custom ? 'us-east-1' : undefined)
  const config: S3ClientConfig = {
    forcePathStyle: options.forcePathStyle ?? custom,
  }
  if (endpoint !== undefined) config.endpoint = endpoint
  if (region !== undefined) config.region = region
  if (custom && nonEmpty(env.AWS_REQUEST_CHECKSUM_CALCULATION) === undefined) {
    config.requestChecksumCalculation = 'WHEN_REQUIRED'
  }
  if (custom && nonEmpty(env.AWS_RESPONSE_CHECKSUM_VALIDATION) === undefined) {
    config.responseChecksumValidation = 'WHEN_REQUIRED'
  }
  return new S3Client({ ...config, ...options.clientConfig })
}

/** `createS3Store` on a client from `createS3ClientFromEnv`: the usual way to open an S3 store. */
export function createS3StoreFromEnv(options: S3StoreFromEnvOptions): S3Store {
  const { endpoint, region, forcePathStyle, clientConfig, env, ...store } = options
  return createS3Store({
    ...store,
    client: createS3ClientFromEnv({ endpoint, region, forcePathStyle, clientConfig, env }),
  })
}
