import { Writable } from 'node:stream'

/** A sink that drops every byte: the end of a pipeline run only to hash or verify. */
export function discard(onChunk?: (chunk: Buffer) => void): Writable {
  return new Writable({
    write(chunk: Buffer, _enc, done) {
      onChunk?.(chunk)
      done()
    },
  })
}
