import type { BackupOptions, BackupResult } from '../commands/backup.js'
import type { CleanupOptions, CleanupResult } from '../commands/cleanup.js'
import type { CommandContext } from '../commands/context.js'
import type { DiffOptions, DiffResult } from '../commands/diff.js'
import type { GcOptions, GcResult } from '../commands/gc.js'
import type { InfoOptions, InfoResult } from '../commands/info.js'
import type { KeyOptions, KeyResult } from '../commands/key.js'
import type { ListOptions, ListResult } from '../commands/list.js'
import type {
  MigrateManifestsOptions,
  MigrateManifestsResult,
} from '../commands/migrate-manifests.js'
import type { PruneCommandOptions, PruneCommandResult } from '../commands/prune.js'
import type { RecordOptions, RecordResult } from '../commands/record.js'
import type { RecoverCommandResult, RecoverOptions } from '../commands/recover.js'
import type { RestoreOptions, RestoreResult } from '../commands/restore.js'
import type { StatusOptions, StatusResult } from '../commands/status.js'
import type { UndoCommandResult, UndoOptions } from '../commands/undo.js'
import type { VerifyOptions, VerifyResult } from '../commands/verify.js'

/** Each command's parsed options and result. */
export interface Commands {
  backup: [BackupOptions, BackupResult]
  record: [RecordOptions, RecordResult]
  restore: [RestoreOptions, RestoreResult]
  undo: [UndoOptions, UndoCommandResult]
  recover: [RecoverOptions, RecoverCommandResult]
  list: [ListOptions, ListResult]
  info: [InfoOptions, InfoResult]
  cleanup: [CleanupOptions, CleanupResult]
  verify: [VerifyOptions, VerifyResult]
  gc: [GcOptions, GcResult]
  status: [StatusOptions, StatusResult]
  diff: [DiffOptions, DiffResult]
  prune: [PruneCommandOptions, PruneCommandResult]
  key: [KeyOptions, KeyResult]
  'migrate-manifests': [MigrateManifestsOptions, MigrateManifestsResult]
}

export type CommandName = keyof Commands

type Run<K extends CommandName> = (
  options: Commands[K][0],
  context: CommandContext,
) => Promise<Commands[K][1]>

// Loaded only when the command runs, so `--version` and `--help` never load the service stack.
export const loadCommand: { [K in CommandName]: () => Promise<Run<K>> } = {
  backup: () => import('../commands/backup.js').then((m) => m.backup),
  record: () => import('../commands/record.js').then((m) => m.record),
  restore: () => import('../commands/restore.js').then((m) => m.restore),
  undo: () => import('../commands/undo.js').then((m) => m.undo),
  recover: () => import('../commands/recover.js').then((m) => m.recover),
  list: () => import('../commands/list.js').then((m) => m.list),
  info: () => import('../commands/info.js').then((m) => m.info),
  cleanup: () => import('../commands/cleanup.js').then((m) => m.cleanup),
  verify: () => import('../commands/verify.js').then((m) => m.verify),
  gc: () => import('../commands/gc.js').then((m) => m.gc),
  status: () => import('../commands/status.js').then((m) => m.status),
  diff: () => import('../commands/diff.js').then((m) => m.diff),
  prune: () => import('../commands/prune.js').then((m) => m.prune),
  key: () => import('../commands/key.js').then((m) => m.key),
  'migrate-manifests': () =>
    import('../commands/migrate-manifests.js').then((m) => m.migrateManifests),
}

/** Commands that open no backup store at all. */
export const NO_SERVICE: ReadonlySet<CommandName> = new Set(['key'])

/** Commands that read no stored bytes: they run even when the encryption key is not at hand. */
export const NO_KEY_NEEDED: ReadonlySet<CommandName> = new Set([
  'list',
  'info',
  'cleanup',
  'prune',
  'gc',
  'migrate-manifests',
])

/** Commands that write backups (a passphrase-keyed root gets its salt file). */
/** Commands that only read files on disk: they take keys outside the project without --allow-outside. */
export const READS_FILES_ONLY: ReadonlySet<CommandName> = new Set([
  'list',
  'info',
  'status',
  'verify',
  'diff',
])

export const WRITES_BACKUPS: ReadonlySet<CommandName> = new Set(['backup', 'restore'])

/** Commands that move many bytes and may draw a progress bar. */
export const SHOWS_PROGRESS: ReadonlySet<CommandName> = new Set(['backup', 'restore', 'verify'])

/** Whether a result means success (exit 0) or a failure or problem found (exit 1). */
export const succeeded: { [K in CommandName]: (result: Commands[K][1]) => boolean } = {
  backup: (r) => r.failed.length === 0,
  record: (r) => r.failed.length === 0,
  restore: (r) => r.failed.length === 0,
  undo: (r) => r.failed.length === 0,
  recover: () => true,
  list: (r) => !('patches' in r) || r.patches.every((p) => !p.error),
  info: () => true,
  cleanup: (r) => r.notFound.length === 0 && r.errors.length === 0,
  verify: (r) => r.problems.length === 0,
  gc: () => true,
  status: () => true,
  diff: () => true,
  prune: (r) => r.errors.length === 0,
  key: () => true,
  'migrate-manifests': (r) => r.errors.length === 0,
}
