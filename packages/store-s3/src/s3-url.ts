import { PatchBackupError } from '@patch-backup/core'
import { normalizePrefix } from './object-names.js'

/** Where a store lives, as `parseS3Url` reads it; pass it to `createS3StoreFromEnv` as is. */
export interface S3Location {
  bucket: string
  /** Normalized: no leading or trailing `/`; `''` for the bucket's root. */
  prefix: string
  endpoint?: string
  region?: string
  forcePathStyle?: boolean
}

const QUERY = new Set(['endpoint', 'region', 'forcePathStyle'])

function invalid(url: string, why: string): PatchBackupError {
  return new PatchBackupError(
    'INVALID_OPTIONS',
    `${JSON.stringify(url)} is not a store URL: ${why}. Expected s3://<bucket>/<prefix>, optionally with ?endpoint=<url>&region=<region>&forcePathStyle=true.`,
  )
}

/**
 * Reads `s3://bucket/some/prefix` into `{ bucket, prefix }`, for a `--store` option.
 * Optional query parameters: `endpoint` (URL-encoded), `region`, `forcePathStyle` (`true`/`false`).
 * Credentials never go in the URL: they come from the environment.
 */
export function parseS3Url(url: string): S3Location {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    throw invalid(url, 'it does not parse as a URL')
  }
  if (parsed.protocol !== 's3:') throw invalid(url, 'the scheme must be s3://')
  if (parsed.username || parsed.password) {
    throw invalid(url, 'credentials do not belong in the URL; set AWS_ACCESS_KEY_ID and friends')
  }
  if (parsed.port) throw invalid(url, 'a bucket name has no port; put the server in ?endpoint=')
  const bucket = decodeURIComponent(parsed.hostname)
  if (!bucket) throw invalid(url, 'the bucket name is missing')
  const location: S3Location = {
    bucket,
    prefix: normalizePrefix(decodeURIComponent(parsed.pathname)),
  }
  for (const [name, value] of parsed.searchParams) {
    if (!QUERY.has(name)) throw invalid(url, `unknown parameter ${JSON.stringify(name)}`)
    if (name === 'endpoint') location.endpoint = value
    else if (name === 'region') location.region = value
    else if (value === 'true' || value === 'false') location.forcePathStyle = value === 'true'
    else throw invalid(url, 'forcePathStyle must be true or false')
  }
  return location
}
