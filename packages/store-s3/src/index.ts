export { type Bucket, type ListedObject, openBucket, type UploadedPart } from './bucket.js'
export {
  contentExists,
  freeContentIfUnreferenced,
  isContentReferenced,
  openContent,
} from './content.js'
export {
  createS3ClientFromEnv,
  createS3StoreFromEnv,
  type S3ClientFromEnvOptions,
  type S3StoreFromEnvOptions,
} from './from-env.js'
export {
  type CompactResult,
  createS3ManifestRepository,
  type S3ManifestRepository,
  type S3ManifestRepositoryOptions,
} from './manifests/repository.js'
export { type UploadTuning, uploadInParts } from './multipart.js'
export {
  type ContentAddress,
  contentAddressOf,
  decodeKey,
  encodeKey,
  normalizePrefix,
  type ObjectNames,
  objectNames,
} from './object-names.js'
export {
  DEFAULT_ORPHAN_GRACE_MS,
  openS3Repository,
  type S3Repository,
  type S3RepositoryOptions,
} from './repository.js'
export { parseS3Url, type S3Location } from './s3-url.js'
export { MAX_OBJECT_BYTES } from './staging.js'
export {
  createS3Store,
  type RemoveOptions,
  type S3Store,
  type S3StoreOptions,
} from './store.js'
