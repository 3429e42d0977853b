import path from 'node:path'
import type { CommandContext, ProgressSink } from '../commands/context.js'
import { openPatchBackupsAsync } from '../open.js'
import { human } from '../output/human.js'
import { jsonDocument } from '../output/json.js'
import { colorEnabled, createStyle } from '../output/style.js'
import { badCwd, runProject } from '../project.js'
import { layout, resolveRoot } from '../root.js'
import {
  type CommandName,
  loadCommand,
  NO_KEY_NEEDED,
  NO_SERVICE,
  READS_FILES_ONLY,
  SHOWS_PROGRESS,
  WRITES_BACKUPS,
} from './commands.js'
import type { MainIo } from './main.js'
import type { GlobalFlags, Invocation } from './spec.js'
import { UsageError } from './usage-error.js'

// A command's run, loaded by main.ts once the line parsed: what every command but `key` needs
// (the service, the project, the printing) in one module, not a chain of small ones.

/** `--store`, else `PATCH_BACKUP_STORE`; `undefined` for the local cacache store. */
function storeUrl(globals: GlobalFlags, env: NodeJS.ProcessEnv) {
  if (globals.store !== undefined) return { url: globals.store, source: '--store' }
  const fromEnv = env.PATCH_BACKUP_STORE
  return fromEnv ? { url: fromEnv, source: 'PATCH_BACKUP_STORE' } : undefined
}

/** Opens the remote store, if one is asked for; a URL that names none is a usage error. */
async function openRemote(invocation: Invocation, env: NodeJS.ProcessEnv) {
  const wanted = storeUrl(invocation.globals, env)
  if (!wanted) return undefined
  // With a bucket, the manifests live there too: every command reads it. Loaded only now: a run without --store never loads @patch-backup/store-s3 or the AWS SDK.
  const { openRemoteStore, StoreUrlError } = await import('../remote-store.js')
  try {
    return { url: wanted.url, ...(await openRemoteStore(wanted.url, wanted.source)) }
  } catch (error) {
    if (!(error instanceof StoreUrlError)) throw error
    throw new UsageError(error.message, invocation.usage, invocation.commandPath)
  }
}

/** The run's project root and where its file arguments resolve (see project.ts). */
async function projectOf(invocation: Invocation) {
  const { globals, options } = invocation
  if (globals.cwd !== undefined) {
    // A --cwd that is no directory would make status say "all missing" and a dry run promise a
    // restore that then fails: say so before anything runs.
    const why = await badCwd(path.resolve(globals.cwd))
    if (why) throw new UsageError(why, invocation.usage, invocation.commandPath)
  }
  const uuid = (options as { uuid?: unknown }).uuid
  let manifestsDir: string | undefined
  if (typeof uuid === 'string' && globals.cwd === undefined) {
    try {
      manifestsDir = layout(resolveRoot({ dir: globals.dir })).manifests
    } catch {
      // no usable backup root: opening the service reports it
    }
  }
  return runProject({ cwdFlag: globals.cwd, manifestsDir, uuid: uuid as string | undefined })
}

export async function execute(invocation: Invocation, io: MainIo, env: NodeJS.ProcessEnv) {
  const { name, options, globals } = invocation
  if (NO_SERVICE.has(name)) {
    const run = await loadCommand[name]()
    return (run as (o: unknown) => Promise<unknown>)(options)
  }
  if (name === 'backup' && storeUrl(globals, env) === undefined) {
    // A backup puts into the local store (store-cacache, loaded at its first call): start loading
    // that module now, so that it compiles while the main thread would wait on the file system
    // (the project, the config, the files' stats, the manifest directory and lock). The store's
    // own load, later, finds it loaded; a failure here is that load's to report.
    import('@patch-backup/store-cacache').catch(() => {})
  }
  const remote = await openRemote(invocation, env)
  try {
    let progress: ProgressSink | undefined
    if (SHOWS_PROGRESS.has(name) && io.stderr.isTTY && !globals.quiet) {
      const { createProgress } = await import('../output/progress.js')
      progress = await createProgress(io.stderr)
    }
    const [countTransfers, run] = await Promise.all([
      // Only a drawn bar counts bytes.
      progress ? import('../output/count-transfers.js').then((m) => m.countTransfers) : undefined,
      loadCommand[name](),
    ])
    const sink = progress
    const project = await projectOf(invocation)
    const backups = await openPatchBackupsAsync({
      dir: globals.dir,
      cwd: project.cwd,
      projectRoot: project.projectRoot,
      outsideProject: globals.allowOutside || READS_FILES_ONLY.has(name) ? 'allow' : 'refuse',
      store: remote?.store,
      sharedManifests: remote?.manifests,
      decorateStore: sink && countTransfers ? (store) => countTransfers(store, sink) : undefined,
      policies: {
        env,
        forWriting: WRITES_BACKUPS.has(name),
        keyFile: globals.keyFile,
        autoPrune: globals.autoPrune !== false,
        needsKey: !NO_KEY_NEEDED.has(name),
        describeKey: name === 'info',
      },
    })
    const context: CommandContext = { backups, policy: backups.policy }
    if (progress) context.progress = progress
    if (remote) context.remote = remote.url
    return await (run as (o: unknown, c: CommandContext) => Promise<unknown>)(options, context)
  } finally {
    remote?.close()
  }
}

export async function print(
  name: CommandName,
  data: unknown,
  globals: GlobalFlags,
  io: MainIo,
  env: NodeJS.ProcessEnv,
) {
  if (globals.json) {
    io.stdout.write(jsonDocument(data))
    return
  }
  const render = human[name] as (
    d: unknown,
    s: ReturnType<typeof createStyle>,
  ) => {
    stdout: string
    stderr: string
  }
  const out = render(
    data,
    createStyle(colorEnabled({ flag: globals.color, env, isTTY: io.stdout.isTTY })),
  )
  const err = render(
    data,
    createStyle(colorEnabled({ flag: globals.color, env, isTTY: io.stderr.isTTY })),
  )
  if (!globals.quiet && out.stdout) io.stdout.write(out.stdout)
  if (err.stderr) io.stderr.write(err.stderr)
}
