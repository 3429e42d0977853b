import type { BackupStore, ManifestRepository } from '@patch-backup/core'

type MaybePromise<T> = T | Promise<T>

/** What a store adapter hands the suite: the store, plus hooks that reach under it. */
export interface StoreFixture {
  store: BackupStore
  /** Flips bytes of the stored content for `integrity`, as disk rot would. */
  corrupt?: (integrity: string) => MaybePromise<void>
  /** Deletes the stored content for `integrity` while keys still point at it. */
  lose?: (integrity: string) => MaybePromise<void>
  /** Whether any bytes for `integrity` are still held (to check that removal frees them). */
  holdsContent?: (integrity: string) => MaybePromise<boolean>
  cleanup?: () => MaybePromise<void>
}

export interface ManifestFixture {
  repo: ManifestRepository
  /** Makes the stored manifest of `uuid` unreadable (truncated, not JSON). */
  corrupt?: (uuid: string) => MaybePromise<void>
  cleanup?: () => MaybePromise<void>
}

/** A full stack for the service suite: a store and a repository, both fresh. */
export interface ServiceFixture {
  store: StoreFixture
  manifests: ManifestFixture
}

export type Factory<T> = () => MaybePromise<T>
