import { createMemoryManifestRepository, createMemoryStore } from '@patch-backup/core'
import { runBackupStoreSuite, runManifestRepositorySuite, runServiceSuite } from '../src/index.js'

function memoryStoreFixture() {
  const store = createMemoryStore()
  return {
    store,
    corrupt: (integrity: string) => store.tamper(integrity, Buffer.from('rotten bytes')),
    lose: (integrity: string) => store.lose(integrity),
    holdsContent: async (integrity: string) => (await store.open('', integrity)) !== undefined,
  }
}

function memoryManifestFixture() {
  const repo = createMemoryManifestRepository()
  return { repo, corrupt: (uuid: string) => repo.corrupt(uuid) }
}

runBackupStoreSuite('memory', memoryStoreFixture)
runManifestRepositorySuite('memory', memoryManifestFixture)
runServiceSuite('memory store + memory manifests', () => ({
  store: memoryStoreFixture(),
  manifests: memoryManifestFixture(),
}))
