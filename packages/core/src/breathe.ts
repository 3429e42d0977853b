// Small files are read, hashed and written with synchronous calls (see restore/ and service/), so
// a loop over many of them would hold the event loop for its whole length: timers, I/O callbacks
// and every other task of the process would wait. Loops call `breathe()` once per file; it yields
// one turn of the event loop whenever synchronous work has held it for longer than this.
const HOLD_MS = 2

// process.hrtime, not performance.now(): the `performance` global loads node's perf_hooks at its
// first use, and this module is loaded (and this clock read) by every command of the CLI.
const now = () => Number(process.hrtime.bigint()) / 1e6

let since = now()

/** Yields to the event loop if it has not turned for `HOLD_MS`; otherwise costs a clock read. */
export async function breathe(): Promise<void> {
  if (now() - since < HOLD_MS) return
  await new Promise((resolve) => setImmediate(resolve))
  since = now()
}
