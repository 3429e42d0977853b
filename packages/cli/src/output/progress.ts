import type { SingleBar } from 'cli-progress'
import type { ProgressSink } from '../commands/context.js'
import { formatBytes } from './bytes.js'

/** Below both of these a bar would only flicker: stay quiet. */
export const PROGRESS_MIN_FILES = 20
export const PROGRESS_MIN_BYTES = 16 * 1024 * 1024

/** A bar on `stream` (the caller checks it is a terminal) for work big enough to need one. */
export async function createProgress(stream: NodeJS.WritableStream): Promise<ProgressSink> {
  // Imported with the bar: runs without a terminal never load it.
  const { default: cliProgress } = await import('cli-progress')
  let bar: SingleBar | undefined
  let total = { files: 0, bytes: 0 }
  const done = { files: 0, bytes: 0 }
  const byBytes = () => total.bytes > 0
  const payload = () => ({
    amount: byBytes()
      ? `${formatBytes(done.bytes)} / ${formatBytes(total.bytes)}`
      : `${done.files} / ${total.files}`,
    files: `${Math.min(done.files, total.files)}/${total.files} files`,
  })
  return {
    start(label, work) {
      total = work
      if (work.files < PROGRESS_MIN_FILES && work.bytes < PROGRESS_MIN_BYTES) return
      bar = new cliProgress.SingleBar(
        {
          stream: stream as NodeJS.WriteStream,
          format: `${label.padEnd(7)} {bar} {percentage}% | {amount} | {files}`,
          barsize: 30,
          hideCursor: true,
          clearOnComplete: true,
          fps: 10,
        },
        cliProgress.Presets.shades_classic,
      )
      bar.start(byBytes() ? total.bytes : total.files, 0, payload())
    },
    advance({ files = 0, bytes = 0 }) {
      done.files += files
      done.bytes += bytes
      bar?.update(Math.min(byBytes() ? done.bytes : done.files, bar.getTotal()), payload())
    },
    stop() {
      bar?.stop()
      bar = undefined
    },
  }
}
