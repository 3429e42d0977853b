import type { FileState } from '@patch-backup/core'
import type { BackupResult } from '../commands/backup.js'
import type { CleanupResult } from '../commands/cleanup.js'
import type { DiffResult } from '../commands/diff.js'
import type { GcResult } from '../commands/gc.js'
import type { InfoResult } from '../commands/info.js'
import type { KeyResult } from '../commands/key.js'
import type { ListResult } from '../commands/list.js'
import type { MigrateManifestsResult } from '../commands/migrate-manifests.js'
import type { PruneCommandResult } from '../commands/prune.js'
import type { RecordResult } from '../commands/record.js'
import type { RecoverCommandResult } from '../commands/recover.js'
import type { RestorePlanEntry, RestoreResult } from '../commands/restore.js'
import type { StatusResult } from '../commands/status.js'
import type { UndoCommandResult } from '../commands/undo.js'
import type { VerifyResult } from '../commands/verify.js'
import type { PolicySummary } from '../open.js'
import { formatBytes } from './bytes.js'
import type { Style } from './style.js'
import { table } from './table.js'

/** What a command prints for a person: results on stdout, problems on stderr (kept with --quiet). */
export interface Rendered {
  stdout: string
  stderr: string
}

const plural = (n: number, word: string) =>
  `${n} ${n === 1 ? word : word.endsWith('ch') ? `${word}es` : `${word}s`}`
const shortIntegrity = (integrity: string) =>
  integrity.length > 20 ? `${integrity.slice(0, 19)}…` : integrity
const exactBytes = (n: number) => (n < 1024 ? `${n} B` : `${formatBytes(n)} (${n} bytes)`)

function stateLabel(state: FileState, s: Style): string {
  if (state === 'original') return s.green(state)
  if (state === 'patched') return s.cyan(state)
  if (state === 'modified' || state === 'mode-changed') return s.yellow(state)
  return s.red(state)
}

/** Rows whose last cell may be empty: no trailing spaces. */
const trimmed = (text: string) => text.replace(/ +\n/g, '\n')

/** A DRIFTED row says what matters: the recorded patched bytes and what is there now. */
function restoreErrors(d: RestoreResult) {
  const drifted = new Map(d.drifted.map((f) => [f.path, f]))
  return d.errors.map((e) => {
    const f = e.code === 'DRIFTED' ? drifted.get(e.path) : undefined
    if (!f) return e
    return {
      ...e,
      message: `changed since the patch: recorded ${f.patchedIntegrity}, now ${f.currentIntegrity}`,
    }
  })
}

function driftHint(d: RestoreResult, s: Style): string {
  if (!d.errors.some((e) => e.code === 'DRIFTED')) return ''
  const n = d.errors.filter((e) => e.code === 'DRIFTED').length
  const them = n === 1 ? 'it' : 'them'
  return `${s.dim('hint:')} ${n === 1 ? 'a file' : `${n} files`} changed after the patch was recorded (a reinstall?). 'patch-backup diff ${d.uuid} <file>' shows how; run the restore again with --force to restore ${them} anyway, keeping the current bytes for 'patch-backup undo ${d.uuid}'.\n`
}

function failures(
  title: string,
  errors: readonly { path: string; code: string; message: string }[],
  s: Style,
) {
  if (errors.length === 0) return ''
  const rows = errors.map((e) => [e.path, s.red(e.code), e.message])
  return `${s.red(title)}\n${table(rows, { indent: '  ' })}`
}

function backup(d: BackupResult, s: Style): Rendered {
  const kept = new Map((d.kept ?? []).map((k) => [k.path, k]))
  const rows = d.backedUp.map((path) => {
    const info = d.files[path]
    const k = kept.get(path)
    const note = k
      ? k.differs
        ? s.yellow('kept the first backup; the file differs now')
        : s.dim('already backed up')
      : ''
    return [path, formatBytes(info?.size ?? 0), s.dim(shortIntegrity(info?.integrity ?? '')), note]
  })
  const fresh = d.backedUp.length - kept.size
  const already = kept.size > 0 ? `; ${kept.size} already backed up, first backup kept` : ''
  const dirs = d.directories ?? []
  const from =
    dirs.length === 0
      ? ''
      : ` from ${dirs.map((x) => `${x.path} (${plural(x.files, 'file')})`).join(', ')}`
  const head = `Backed up ${plural(fresh, 'file')} under patch ${s.bold(d.uuid)} (${formatBytes(d.size)})${from}${already}\n`
  const differs = [...kept.values()].filter((k) => k.differs)
  const warning =
    differs.length === 0
      ? ''
      : `${s.yellow('warning:')} ${differs.length === 1 ? `${differs[0]?.path} already had a backup in patch ${d.uuid}; it was kept (the first backup wins), and the file differs from it now` : `${differs.length} files already had a backup in patch ${d.uuid}; the first backups were kept, and the files differ from them now`}:\n${table(
          differs.map((k) => [
            k.path,
            `kept ${shortIntegrity(k.backupIntegrity)}`,
            `now ${k.currentIntegrity ? shortIntegrity(k.currentIntegrity) : 'unreadable'}`,
          ]),
          { indent: '  ' },
        )}${s.dim('hint:')} that is right when the file was patched since its backup; to back up its current bytes instead, run the backup again with --overwrite.\n`
  const linked = d.backedUp.filter(
    (p) => (d.files[p]?.links ?? 1) > 1 && d.files[p]?.linksBroken !== true,
  )
  const links =
    linked.length === 0
      ? ''
      : `${s.yellow('warning:')} ${linked.length === 1 ? 'a file has' : `${linked.length} files have`} other hard links (pnpm links files from its store): a patch that writes in place writes into every link, in other projects too:\n${table(
          linked.map((p) => [p, `${d.files[p]?.links} links`]),
          { indent: '  ' },
        )}${s.dim('hint:')} run the backup with --break-links to give each its own copy first, or patch by writing a new file and renaming it.\n`
  return {
    stdout: head + trimmed(table(rows, { indent: '  ', right: [1] })),
    stderr:
      warning +
      links +
      failures(`Could not back up ${plural(d.failed.length, 'file')}:`, d.errors, s),
  }
}

function planNote(f: RestorePlanEntry): string {
  if (f.action === 'unchanged') return 'already original'
  if (f.action === 'refuse')
    return `refused: ${f.current === 'symlink' ? 'a symlink now' : 'drifted'} (--force restores it)`
  if (f.action === 'fail') return 'would fail (see below)'
  if (f.current === 'symlink') return 'the link is replaced by the file, not written through'
  if (f.current === 'drifted') return 'drifted: restored with --force, its bytes kept for undo'
  return ''
}

function dryRun(d: RestoreResult, s: Style): Rendered {
  const files = d.files ?? []
  const count = (a: RestorePlanEntry['action']) => files.filter((f) => f.action === a).length
  const parts = [`${count('restore')} would be restored`]
  if (count('unchanged')) parts.push(`${count('unchanged')} already original`)
  if (count('refuse')) parts.push(`${count('refuse')} refused (drifted)`)
  if (count('fail')) parts.push(`${count('fail')} would fail`)
  const head = `Dry run: ${plural(files.length, 'file')} of patch ${s.bold(d.uuid)} verified; ${parts.join(', ')}. Nothing was written.\n`
  const rows = files.map((f) => [
    stateLabel(f.current, s),
    f.path,
    formatBytes(f.size),
    planNote(f),
  ])
  const pending = d.pendingRecovery
    ? `Note: a restore of this patch was interrupted; the next restore (or 'patch-backup recover ${d.uuid}') finishes or rolls it back first.\n`
    : ''
  const title =
    d.atomic && d.failed.length > 0
      ? `${plural(d.failed.length, 'file')} cannot be restored, so an all-or-nothing restore would change nothing:`
      : `${plural(d.failed.length, 'file')} could not be restored:`
  return {
    stdout: head + trimmed(table(rows, { indent: '  ', right: [2] })) + pending,
    stderr: failures(title, restoreErrors(d), s) + driftHint(d, s),
  }
}

function restore(d: RestoreResult, s: Style): Rendered {
  if (d.dryRun) return dryRun(d, s)
  const undoable = d.atomic || d.drifted.length > 0
  if (d.atomic && d.failed.length > 0) {
    const why = d.rolledBack
      ? 'A rename failed midway; every file already replaced was put back.\n'
      : ''
    return {
      stdout: '',
      stderr:
        failures(
          `Restored nothing of patch ${d.uuid}: ${plural(d.failed.length, 'file')} could not be restored, so every file was left as it was (all or nothing):`,
          restoreErrors(d),
          s,
        ) +
        why +
        driftHint(d, s),
    }
  }
  const unchanged = new Set(d.unchanged ?? [])
  const written = d.restored.length - unchanged.size
  const already =
    unchanged.size > 0
      ? `; ${unchanged.size} already original, left as ${unchanged.size === 1 ? 'it was' : 'they were'}`
      : ''
  const head = `Restored ${plural(written, 'file')} of patch ${s.bold(d.uuid)}${d.atomic ? ' (all or nothing)' : ''}${already}\n`
  const undoHint =
    undoable && d.failed.length === 0
      ? s.dim(`'patch-backup undo ${d.uuid}' puts back what this restore replaced.\n`)
      : ''
  return {
    stdout:
      head +
      table(
        d.restored.map((p) => [
          unchanged.has(p) ? s.dim('already original') : s.green('restored'),
          p,
        ]),
        { indent: '  ' },
      ) +
      undoHint,
    stderr:
      failures(
        `Could not restore ${plural(d.failed.length, 'file')} (each left as it was):`,
        restoreErrors(d),
        s,
      ) + driftHint(d, s),
  }
}

function record(d: RecordResult, s: Style): Rendered {
  const head = `Recorded the patched bytes of ${plural(d.files.length, 'file')} of patch ${s.bold(d.uuid)}\n`
  const rows = d.files.map((f) => [
    f.path,
    s.dim(shortIntegrity(f.patchedIntegrity)),
    f.unchanged ? s.yellow('unchanged by the patch') : '',
  ])
  return {
    stdout: head + trimmed(table(rows, { indent: '  ' })),
    stderr: failures(`Could not record ${plural(d.failed.length, 'file')}:`, d.errors, s),
  }
}

function undo(d: UndoCommandResult, s: Style): Rendered {
  if (d.undone.length === 0 && d.failed.length === 0) {
    return {
      stdout: `Nothing to undo: patch ${s.bold(d.uuid)} has no all-or-nothing or forced restore to take back.\n`,
      stderr: '',
    }
  }
  const removed = new Set(d.removed)
  const rows = d.undone.map((p) =>
    removed.has(p)
      ? [s.yellow('removed'), p, s.dim('(not there before the restore)')]
      : [s.green('put back'), p, ''],
  )
  return {
    stdout:
      `Undid the last restore of patch ${s.bold(d.uuid)}: ${plural(d.undone.length, 'file')} as they were before it\n` +
      trimmed(table(rows, { indent: '  ' })),
    stderr: failures(
      `Could not put back ${plural(d.failed.length, 'file')} (run undo again once fixed):`,
      d.errors,
      s,
    ),
  }
}

function recover(d: RecoverCommandResult, s: Style): Rendered {
  if (d.outcome === 'nothing')
    return {
      stdout: `Nothing to recover: no restore of patch ${s.bold(d.uuid)} was interrupted.\n`,
      stderr: '',
    }
  const head =
    d.outcome === 'rolled-forward'
      ? `Finished the interrupted restore of patch ${s.bold(d.uuid)}: ${plural(d.files.length, 'file')} restored\n`
      : `Rolled back the interrupted restore of patch ${s.bold(d.uuid)}: ${plural(d.files.length, 'file')} as they were before it\n`
  const label = d.outcome === 'rolled-forward' ? s.green('restored') : s.yellow('as before')
  return {
    stdout:
      head +
      table(
        d.files.map((p) => [label, p]),
        { indent: '  ' },
      ),
    stderr: '',
  }
}

function list(d: ListResult, s: Style): Rendered {
  if ('patches' in d) {
    if (d.patches.length === 0)
      return {
        stdout: d.root
          ? `No patches in ${d.root} (another root? give --dir or set PATCH_BACKUP_DIR).\n`
          : 'No patches in this store.\n',
        stderr: '',
      }
    const rows = [
      ['PATCH', 'FILES', 'ORIGINAL SIZE', 'PATCHED AT'].map((h) => s.dim(h)),
      ...d.patches.map((p) =>
        p.error
          ? [p.uuid, '-', '-', s.red(p.error.code)]
          : [p.uuid, String(p.files), formatBytes(p.size ?? 0), p.patchedAt ?? ''],
      ),
    ]
    const broken = d.patches.filter((p) => p.error)
    return {
      stdout: table(rows, { right: [1, 2] }),
      stderr: failures(
        `${plural(broken.length, 'patch')} cannot be read:`,
        broken.map((p) => ({
          path: p.uuid,
          code: p.error?.code ?? '',
          message: p.error?.message ?? '',
        })),
        s,
      ),
    }
  }
  const size = d.files.reduce((sum, f) => sum + f.size, 0)
  const head = `Patch ${s.bold(d.uuid)}, patched at ${d.patchedAt}: ${plural(d.files.length, 'file')}, ${formatBytes(size)}\n`
  const rows = [
    ['FILE', 'ORIGINAL SIZE', 'BACKED UP AT'].map((h) => s.dim(h)),
    ...d.files.map((f) => [f.path, formatBytes(f.size), f.backedUpAt]),
  ]
  return { stdout: head + table(rows, { indent: '  ', right: [1] }), stderr: '' }
}

/** `1d 2h`-ish: the largest whole unit a duration in ms is written in. */
function formatDuration(ms: number): string {
  const units: [string, number][] = [
    ['w', 7 * 86_400_000],
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1000],
  ]
  for (const [unit, size] of units) if (ms >= size && ms % size === 0) return `${ms / size}${unit}`
  for (const [unit, size] of units) if (ms >= size) return `${(ms / size).toFixed(1)}${unit}`
  return `${ms}ms`
}

/** One line per policy: compression, encryption, limits, retention. */
export function policyLines(p: PolicySummary): string[][] {
  const rows: string[][] = []
  const c = p.compression
  rows.push([
    'compression',
    c && c.algorithm !== 'none'
      ? `${c.algorithm}${c.level !== undefined ? ` level ${c.level}` : ''}`
      : 'off',
  ])
  const e = p.encryption
  rows.push([
    'encryption',
    e
      ? `on (key from ${e.keySource}${e.keyId ? `, key id ${e.keyId}` : ''}${e.keyError ? `; key not available: ${e.keyError}` : ''})`
      : 'off',
  ])
  const l = p.limits
  const limits = [
    l?.maxPatchBytes !== undefined ? `max ${formatBytes(l.maxPatchBytes)} per patch` : '',
    l?.maxTotalBytes !== undefined ? `max ${formatBytes(l.maxTotalBytes)} in all` : '',
  ].filter(Boolean)
  rows.push([
    'limits',
    limits.length
      ? `${limits.join(', ')}${l?.onExceeded === 'prune-oldest' ? ', prune oldest when full' : ''}`
      : 'none',
  ])
  const r = p.retention
  const rules = [
    r?.olderThan !== undefined ? `older than ${formatDuration(r.olderThan)}` : '',
    r?.maxTotalBytes !== undefined ? `over ${formatBytes(r.maxTotalBytes)} in all` : '',
    r?.maxPatchBytes !== undefined ? `patches over ${formatBytes(r.maxPatchBytes)}` : '',
    r?.keepLast !== undefined ? `keeping the last ${r.keepLast}` : '',
  ].filter(Boolean)
  rows.push([
    'retention',
    rules.length
      ? `prune ${rules.join(', ')}${r?.intervalMs !== undefined ? `, every ${formatDuration(r.intervalMs)}` : ''}`
      : 'none',
  ])
  rows.push(['config', p.config ?? 'none (defaults)'])
  return rows
}

function info(d: InfoResult, s: Style): Rendered {
  const rows: string[][] = [['patch', s.bold(d.uuid)]]
  if ('backup' in d) {
    const b = d.backup
    rows.push(['file', d.path], ['size', exactBytes(b.size)])
    if (b.storedSize !== undefined) rows.push(['stored size', exactBytes(b.storedSize)])
    rows.push(['integrity', b.integrity])
    rows.push(['backed up at', b.backedUpAt])
    if (b.mode !== undefined) rows.push(['mode', `0${b.mode.toString(8)}`])
    if (b.originalPath !== d.path) rows.push(['original path', b.originalPath])
  } else {
    rows.push(['patched at', d.patchedAt], ['files', String(d.files)], ['size', exactBytes(d.size)])
    if (d.storedSize !== undefined) rows.push(['stored size', exactBytes(d.storedSize)])
    if (d.projectRoot !== undefined) rows.push(['project', d.projectRoot])
    for (const [key, value] of Object.entries(d.extra)) rows.push([key, JSON.stringify(value)])
  }
  let out = table(rows.map(([k, v]) => [s.dim(k ?? ''), v ?? '']))
  if (d.policy) {
    out += `${s.dim('Policy in force:')}\n${table(
      policyLines(d.policy).map(([k, v]) => [s.dim(k ?? ''), v ?? '']),
      { indent: '  ' },
    )}`
  }
  return { stdout: out, stderr: '' }
}

function ageOf(patchedAt: string, now: number): string {
  const ms = now - Date.parse(patchedAt)
  if (!Number.isFinite(ms)) return '?'
  if (ms < 60_000) return `${Math.max(0, Math.floor(ms / 1000))}s`
  if (ms < 3_600_000) return `${Math.floor(ms / 60_000)}m`
  if (ms < 86_400_000) return `${Math.floor(ms / 3_600_000)}h`
  return `${Math.floor(ms / 86_400_000)}d`
}

function prune(d: PruneCommandResult, s: Style): Rendered {
  const issues = [...d.skipped, ...d.errors]
  const stderr = issues.length
    ? `${
        d.skipped.length
          ? `${s.yellow('Skipped:')}\n${table(
              d.skipped.map((e) => [e.uuid, e.code, e.message]),
              { indent: '  ' },
            )}`
          : ''
      }${
        d.errors.length
          ? `${s.red('Not freed')} (run 'patch-backup gc'):\n${table(
              d.errors.map((e) => [e.uuid, s.red(e.code), e.message]),
              { indent: '  ' },
            )}`
          : ''
      }`
    : ''
  if (d.removed.length === 0) {
    return {
      stdout: `Nothing to prune: ${plural(d.remainingPatches, 'patch')} (${formatBytes(d.remainingBytes)} of distinct content) kept.\n`,
      stderr,
    }
  }
  const now = Date.now()
  const rows = [
    ['PATCH', 'AGE', 'FILES', 'ORIGINAL SIZE', 'FREES', 'REASON'].map((h) => s.dim(h)),
    ...d.removed.map((p) => [
      p.uuid,
      ageOf(p.patchedAt, now),
      String(p.files),
      formatBytes(p.size),
      formatBytes(p.bytes),
      p.reason,
    ]),
  ]
  const verb = d.dryRun ? 'would remove' : 'Removed'
  const head = `${d.dryRun ? 'Dry run: ' : ''}${verb} ${plural(d.removed.length, 'patch')}:\n`
  const stored =
    d.reclaimedStoredBytes !== d.reclaimedBytes
      ? ` (${formatBytes(d.reclaimedStoredBytes)} stored)`
      : ''
  const total = `${d.dryRun ? 'Would reclaim' : 'Reclaimed'} ${s.bold(formatBytes(d.reclaimedBytes))}${stored}; ${plural(d.remainingPatches, 'patch')} (${formatBytes(d.remainingBytes)} of distinct content) kept.${d.dryRun ? ' Nothing was removed.' : ''}\n`
  const legend = s.dim(
    'ORIGINAL SIZE: the bytes of its files, as list shows them; FREES: the bytes no patch that stays also holds.\n',
  )
  return {
    stdout: head + table(rows, { indent: '  ', right: [1, 2, 3, 4] }) + total + legend,
    stderr,
  }
}

function key(d: KeyResult, _s: Style): Rendered {
  return {
    stdout: `${d.key}\n`,
    stderr: `key id ${d.keyId}: keep this key safe (export PATCH_BACKUP_KEY=… or save it to a --key-file); without it encrypted backups cannot be read.\n`,
  }
}

function cleanup(d: CleanupResult, s: Style): Rendered {
  const removed = d.removed.map((u) => `Removed patch ${s.bold(u)}\n`).join('')
  const missing = d.notFound
    .map((u) => `${s.red('error:')} Patch ${u} was removed meanwhile (by another process).\n`)
    .join('')
  const errors = d.errors.map((e) => `${s.red('error:')} ${e.uuid}: ${e.message}\n`).join('')
  return { stdout: removed, stderr: missing + errors }
}

function verify(d: VerifyResult, s: Style): Rendered {
  const head = `Verified ${plural(d.files, 'file')} in ${plural(d.patches, 'patch')}: ${d.ok} ok${
    d.problems.length ? `, ${s.red(plural(d.problems.length, 'problem'))}` : ''
  }\n`
  if (d.problems.length === 0) return { stdout: head, stderr: '' }
  // A file's code says it all (its message repeats the hashes); a manifest's message says why.
  const rows = d.problems.map((p) => [
    p.uuid,
    p.path ?? '(manifest)',
    s.red(p.code),
    p.path === undefined ? p.message : '',
  ])
  return {
    stdout: head,
    stderr: `${s.red('Corrupt or missing:')}\n${table(rows, { indent: '  ' }).replace(/ +\n/g, '\n')}These backups cannot be restored as they are; --json gives each message in full.\n`,
  }
}

function migrateManifests(d: MigrateManifestsResult, s: Style): Rendered {
  const verb = d.dryRun ? 'Would move' : 'Moved'
  const rows = d.moved.map((m) => [
    m.uuid,
    plural(m.files, 'file'),
    m.merged ? '(merged into the one already there)' : '',
  ])
  const head =
    d.moved.length === 0
      ? `No local manifests to move: every patch of this root is in ${d.to}.\n`
      : `${verb} ${plural(d.moved.length, 'manifest')} to ${s.bold(d.to)}:\n${table(rows, { indent: '  ' }).replace(/ +\n/g, '\n')}`
  const errors = d.errors.map((e) => `${s.red('error:')} ${e.uuid}: ${e.message}\n`).join('')
  return { stdout: head, stderr: errors }
}

function gc(d: GcResult, s: Style): Rendered {
  if (d.removedKeys === 0 && d.removedBlobs === 0 && d.freedBytes === 0)
    return { stdout: 'Nothing to reclaim: every stored byte belongs to a patch.\n', stderr: '' }
  return {
    stdout: `Reclaimed ${s.bold(formatBytes(d.freedBytes))}: ${plural(d.removedBlobs, 'blob')} and ${plural(d.removedKeys, 'key')} no patch referenced\n`,
    stderr: '',
  }
}

function status(d: StatusResult, s: Style): Rendered {
  const counts = (Object.entries(d.counts) as [FileState, number][])
    .filter(([, n]) => n > 0)
    .map(([state, n]) => `${n} ${state}`)
  const head = `Patch ${s.bold(d.uuid)}: ${plural(d.files.length, 'file')}${counts.length ? `, ${counts.join(', ')}` : ''}\n`
  const rows = d.files.map((f) => [
    stateLabel(f.state, s),
    f.path,
    f.links ? s.yellow(`${f.links} hard links`) : '',
  ])
  let hint = ''
  if (d.counts.drifted > 0)
    hint = `${s.dim('hint:')} drifted files changed after the patch was recorded; restore refuses them unless --force.\n`
  else if (d.counts.modified > 0 && d.counts.patched === 0)
    hint = `${s.dim('hint:')} run 'patch-backup record ${d.uuid}' right after applying a patch, so that status and restore can tell its changes from later ones.\n`
  const blocked = d.counts.directory + d.counts['not-a-file'] + d.counts.unreadable
  if (blocked > 0)
    hint += `${s.dim('hint:')} restore cannot replace a directory, another non-file or an unreadable file where a backed-up file was: move or fix ${blocked === 1 ? 'it' : 'them'} first.\n`
  if (d.counts['mode-changed'] > 0)
    hint += `${s.dim('hint:')} mode-changed files hold their backed-up bytes with other permission bits; restore puts the recorded mode back.\n`
  if (d.counts.symlink > 0)
    hint += `${s.dim('hint:')} a symlink stands where a backed-up file was; restore replaces the link with the file and never writes through it.\n`
  const linked = d.files.filter((f) => f.links).length
  if (linked > 0)
    hint += `${s.dim('hint:')} ${linked === 1 ? 'a file has' : `${linked} files have`} other hard links (pnpm links files from its store): a patch that writes in place writes into every link. Restores give the file its own copy; so does backup --break-links.\n`
  return { stdout: head + trimmed(table(rows, { indent: '  ' })) + hint, stderr: '' }
}

function colorDiff(text: string, s: Style): string {
  if (!s.enabled) return text
  return text
    .split('\n')
    .map((line) => {
      if (line.startsWith('+++') || line.startsWith('---')) return s.bold(line)
      if (line.startsWith('@@')) return s.cyan(line)
      if (line.startsWith('+')) return s.green(line)
      if (line.startsWith('-')) return s.red(line)
      return line
    })
    .join('\n')
}

function diff(d: DiffResult, s: Style): Rendered {
  if (d.comparison === 'identical')
    return { stdout: `No differences: ${d.path} equals its backup.\n`, stderr: '' }
  if (d.comparison === 'text') return { stdout: colorDiff(d.diff ?? '', s), stderr: '' }
  const why =
    d.comparison === 'binary'
      ? `Binary file ${d.path} differs from its backup`
      : `${d.path} differs from its backup and is too large for a text diff`
  const rows = [
    ['backup', formatBytes(d.backup.size), d.backup.integrity],
    d.current
      ? ['current', formatBytes(d.current.size), d.current.integrity]
      : ['current', '-', s.red('missing')],
  ]
  return { stdout: `${why}:\n${table(rows, { indent: '  ', right: [1] })}`, stderr: '' }
}

/** Each command's human output, by name. */
export const human = {
  backup,
  record,
  restore,
  undo,
  recover,
  list,
  info,
  cleanup,
  verify,
  gc,
  status,
  diff,
  prune,
  key,
  'migrate-manifests': migrateManifests,
}
