import { pipeline, type Readable, Transform } from 'node:stream'
import type { BackupStore } from '@patch-backup/core'
import type { ProgressSink } from '../commands/context.js'

const ignore = () => {}

/**
 * A store decorator that reports every byte written or read, and each file once its bytes are
 * through: progress without a hook in the service. Errors pass through unchanged (pipeline
 * forwards a source's error to the stream the store or service reads).
 */
export function countTransfers(store: BackupStore, sink: ProgressSink): BackupStore {
  const counter = () =>
    new Transform({
      transform(chunk: Buffer, _enc, done) {
        sink.advance({ bytes: chunk.length })
        done(null, chunk)
      },
    })
  const counted: BackupStore = {
    // Counting passes the bytes through and a read's error on to the reader: no check is lost.
    verifiesReads: store.verifiesReads,
    async put(key, data) {
      if (data instanceof Uint8Array) {
        const result = await store.put(key, data)
        sink.advance({ bytes: data.length, files: 1 })
        return result
      }
      const through = counter()
      pipeline(data, through, ignore)
      const result = await store.put(key, through)
      sink.advance({ files: 1 })
      return result
    },
    async open(key, integrity) {
      const stream = await store.open(key, integrity)
      if (!stream) return stream
      const through = counter()
      through.once('end', () => sink.advance({ files: 1 }))
      pipeline(stream, through, ignore)
      return through as Readable
    },
    has: (key) => store.has(key),
    remove: (key, opts) => store.remove(key, opts),
  }
  const { keys, collectGarbage, openKey, removeDeadScratch, readWhole } = store
  if (readWhole) {
    counted.readWhole = (key, integrity, maxBytes) => {
      const bytes = readWhole.call(store, key, integrity, maxBytes)
      if (bytes) sink.advance({ bytes: bytes.length, files: 1 })
      return bytes
    }
  }
  if (openKey) counted.openKey = (key) => openKey.call(store, key)
  if (keys) counted.keys = (prefix) => keys.call(store, prefix)
  // `opts` carries gc's `stillNeeded`: dropping it would let gc free bytes a manifest records.
  if (collectGarbage) counted.collectGarbage = (opts) => collectGarbage.call(store, opts)
  if (removeDeadScratch) counted.removeDeadScratch = () => removeDeadScratch.call(store)
  return counted
}
