import type { BackupStore, FilePaths, PatchBackups } from '@patch-backup/core'
import type { BucketManifestsOptions } from '../bucket-manifests.js'
import type { PolicySummary } from '../open.js'

/** The service a command works on, plus what `status` and `diff` need beyond it. */
export interface CommandBackups extends PatchBackups {
  /** Where file arguments resolve: `--cwd`, else the directory the command runs in. */
  readonly cwd: string
  /** The run's project root and how manifest keys and file arguments become files. */
  readonly paths: FilePaths
  /** The backup root (`--dir`) whose manifests this run reads. */
  readonly root?: string
  /** The store behind the service, for reading backed-up bytes directly. */
  readonly store: BackupStore
  /** With manifests in a bucket: the repositories composed into the service's (`migrate-manifests`). */
  readonly manifestParts?: BucketManifestsOptions
}

/** Where long commands report how far they are; the CLI draws it as a bar on a TTY. */
export interface ProgressSink {
  /** Sizes the work; a sink may decide it is too small to show. */
  start(label: string, total: { files: number; bytes: number }): void
  /** Bytes and files done since the last call. */
  advance(delta: { files?: number; bytes?: number }): void
  stop(): void
}

export interface CommandContext {
  backups: CommandBackups
  progress?: ProgressSink
  /** The `--store` URL when the bytes live in a remote store; absent for the local cacache one. */
  remote?: string
  /** The storage policy in force for this run (`info` reports it). */
  policy?: PolicySummary
}
