import type { S3Client } from '@aws-sdk/client-s3'
import {
  createS3ManifestRepository,
  type S3ManifestRepository,
  type S3ManifestRepositoryOptions,
} from './manifests/repository.js'
import { createS3Store, type S3Store, type S3StoreOptions } from './store.js'

/*
 * One call for a whole repository in a bucket: the bytes (store.ts) and the manifests
 * (manifests/) under one prefix, so any machine with the URL can list and restore everything.
 */

export interface S3RepositoryOptions
  extends S3StoreOptions,
    Omit<S3ManifestRepositoryOptions, keyof S3StoreOptions> {
  client: S3Client
  bucket: string
  prefix?: string
}

export interface S3Repository {
  store: S3Store
  manifests: S3ManifestRepository
}

/** Default `orphanGraceMs` of a repository's store: an hour, as kopia's blob GC waits. */
export const DEFAULT_ORPHAN_GRACE_MS = 60 * 60 * 1000

/**
 * The store and the manifest repository of one bucket and prefix. The store hides keys younger
 * than `orphanGraceMs` (default an hour) from `keys()`, so gc on one machine never takes a key
 * another machine has just written for a backup whose manifest update is still on its way.
 */
export function openS3Repository(options: S3RepositoryOptions): S3Repository {
  const store = createS3Store({
    ...options,
    orphanGraceMs: options.orphanGraceMs ?? DEFAULT_ORPHAN_GRACE_MS,
  })
  const manifests = createS3ManifestRepository(options)
  return { store, manifests }
}
