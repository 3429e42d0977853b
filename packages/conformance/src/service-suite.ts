import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import {
  createPatchBackups,
  isInside,
  type PatchBackups,
  type PatchBackupsOptions,
} from '@patch-backup/core'
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
 * How a run of the suite gives the service its paths: `confined` opens it with `projectRoot` on the
 * temp project and gives project-relative paths (as the CLI does); `absolute` opens it with no root
 * and no cwd and gives absolute paths into a temp dir outside `process.cwd()` (as the seed's
 * callers do).
 */
export type PathMode = 'confined' | 'absolute'

const MODES: Record<PathMode, string> = {
  confined: 'relative paths, confined to the project root',
  absolute: 'absolute paths outside process.cwd(), unconfined',
}

/**
 * The seed's behaviour end to end, on whatever store and repository the factory builds,
 * with real files in a temp project dir: every case once per path mode.
 */
export function runServiceSuite(name: string, factory: Factory<ServiceFixture>): void {
  for (const mode of Object.keys(MODES) as PathMode[]) {
    describe(`PatchBackups service: ${name} (${MODES[mode]})`, () => serviceCases(mode, factory))
  }
}

function serviceCases(mode: PathMode, factory: Factory<ServiceFixture>): void {
  let fixture: ServiceFixture
  let project: { dir: string; dispose: () => Promise<void> }
  let backups: PatchBackups
  let clock: Date
  // Joined as text, not normalized: the service is the one to normalize what it is given.
  const key = (file: string) => (mode === 'confined' ? file : `${project.dir}/${file}`)
  const at = (file: string) => (path.isAbsolute(file) ? file : path.join(project.dir, file))
  const write = async (file: string, content: string | Buffer, fileMode?: number) => {
    await mkdir(path.dirname(at(file)), { recursive: true })
    await writeFile(at(file), content)
    if (fileMode !== undefined) await chmod(at(file), fileMode)
  }
  const read = (file: string) => readFile(at(file), 'utf8')
  const open = (extra: Partial<PatchBackupsOptions> = {}) =>
    createPatchBackups({
      store: fixture.store.store,
      manifests: fixture.manifests.repo,
      ...(mode === 'confined' && { projectRoot: project.dir }),
      now: () => clock,
      ...extra,
    })
  const t: ServiceTest = {
    mode,
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
    get dir() {
      return project.dir
    },
    key,
    at,
    write,
    read,
    open,
  }

  beforeEach(async () => {
    fixture = await factory()
    project = await createProjectDir()
    if (mode === 'absolute' && isInside(process.cwd(), project.dir)) {
      throw new Error(`${project.dir} must lie outside process.cwd() for the absolute-path cases`)
    }
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
}
