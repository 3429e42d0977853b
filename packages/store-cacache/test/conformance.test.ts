import { runBackupStoreSuite } from '@patch-backup/conformance'
import { createCacacheFixture } from './fixture.js'

runBackupStoreSuite('cacache', createCacacheFixture)
