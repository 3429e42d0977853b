import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { createPatchBackups, type PatchBackups, type PatchBackupsOptions } from '@patch-backup/core'
import { afterEach, beforeEach, describe } from 'vitest'
import type { Factory, ServiceFixture } from './fixtures.js'
import { createProjectDir } from './project-dir.js'
import { backupTests } from './service/backup.js'
import { badInputTests } from './service/bad-input.js'
import { cleanupTests } from './service/cleanup.js'
import { LODASH, type ServiceTest } from './service/context.js'
import { damagedManifestTests } from './service/damaged-manifests.js'
import { lookupTests } from './service/lookups.js'
import { maintenanceTests } from './service/maintenance.js'
import { restoreTests } from './service/restore.js'
import { restoreTransactionTests } from './service/restore-transactions.js'

/**
 * The seed's behaviour end to end, on whatever store and repository the factory builds,
 * with real files in a temp project dir.
 */
export function runServiceSuite(name: string, factory: Factory<ServiceFixture>): void {
  describe(`PatchBackups service: ${name}`, () => {
    let fixture: ServiceFixture
    let project: { dir: string; dispose: () => Promise<void> }
    let backups: PatchBackups
    let clock: Date
    const at = (file: string) => path.join(project.dir, file)
    const write = async (file: string, content: string | Buffer, mode?: number) => {
      await mkdir(path.dirname(at(file)), { recursive: true })
      await writeFile(at(file), content)
      if (mode !== undefined) await chmod(at(file), mode)
    }
    const read = (file: string) => readFile(at(file), 'utf8')
    const open = (extra: Partial<PatchBackupsOptions> = {}) =>
      createPatchBackups({
        store: fixture.store.store,
        manifests: fixture.manifests.repo,
        cwd: project.dir,
        now: () => clock,
        ...extra,
      })
    const t: ServiceTest = {
      get fixture() {
        return fixture
      },
      get backups() {
        return backups
      },
      get clock() {
        return clock
      },
      set clock(date) {
        clock = date
      },
      at,
      write,
      read,
      open,
    }

    beforeEach(async () => {
      fixture = await factory()
      project = await createProjectDir()
      clock = new Date('2025-01-14T12:00:00.000Z')
      backups = open()
      await write(LODASH, 'module.exports = "original"\n')
      await write('node_modules/lodash/package.json', '{"name":"lodash"}\n')
    })
    afterEach(async () => {
      await fixture.store.cleanup?.()
      await fixture.manifests.cleanup?.()
      await project.dispose()
    })

    // One file per group of behaviour, in src/service/.
    backupTests(t)
    badInputTests(t)
    restoreTests(t)
    lookupTests(t)
    cleanupTests(t)
    maintenanceTests(t)
    restoreTransactionTests(t)
    damagedManifestTests(t)
  })
}
