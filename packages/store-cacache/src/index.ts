export {
  type CollectGarbageOptions,
  type CollectGarbageResult,
  collectGarbage,
} from './collect-garbage.js'
export {
  contentExists,
  freeContentIfUnreferenced,
  type IndexEntry,
  isContentReferenced,
  listIndexEntries,
} from './content.js'
export {
  CONTENT_DIR,
  type ContentAddress,
  contentAddress,
  contentPathFor,
  INDEX_DIR,
  indexPathFor,
  TMP_DIR,
  trashPrefixFor,
} from './paths.js'
export { type CacacheStore, type CacacheStoreOptions, createCacacheStore } from './store.js'
