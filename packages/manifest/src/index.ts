export {
  createJsonManifestRepository,
  type JsonManifestRepository,
  type JsonManifestRepositoryOptions,
} from './json-manifest-repository.js'
export { DEFAULT_LOCK_STALE_MS, DEFAULT_LOCK_TIMEOUT_MS, MIN_LOCK_STALE_MS } from './lock.js'
export { loadPolicyConfig } from './policy-config-file.js'
export {
  createFilePolicyState,
  type FilePolicyState,
  type FilePolicyStateOptions,
} from './stamp-file.js'
