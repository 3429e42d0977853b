import { readSync } from 'node:fs'

/**
 * The whole file behind `fd`, read with synchronous calls, when it still has at most `size` bytes
 * (its size when it was opened); `undefined` when it grew since, so the caller streams it instead.
 * Reads one byte more than `size` to see the growth.
 */
export function readWholeSync(fd: number, size: number): Buffer | undefined {
  const buffer = Buffer.allocUnsafe(size + 1)
  let filled = 0
  while (filled < buffer.length) {
    const read = readSync(fd, buffer, filled, buffer.length - filled, filled)
    if (read === 0) break
    filled += read
  }
  return filled > size ? undefined : buffer.subarray(0, filled)
}
