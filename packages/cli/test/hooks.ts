import { readFile, rm, stat, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { contentPathFor } from '@patch-backup/store-cacache'

/** Reach under a cacache store to its content files, as disk rot or a stray rm would. */
export function cacheFixtureHooks(cachePath: string) {
  const fileOf = (integrity: string) => contentPathFor(cachePath, integrity)
  return {
    async corrupt(integrity: string) {
      const bytes = await readFile(fileOf(integrity))
      const middle = Math.floor(bytes.length / 2)
      if (bytes.length === 0) await writeFile(fileOf(integrity), Buffer.from([0]))
      else {
        bytes[middle] = (bytes[middle] ?? 0) ^ 0xff
        await writeFile(fileOf(integrity), bytes)
      }
    },
    lose: (integrity: string) => rm(fileOf(integrity), { force: true }),
    holdsContent: (integrity: string) =>
      stat(fileOf(integrity)).then(
        () => true,
        () => false,
      ),
  }
}

/** Tear a manifest file in half, as a crash mid-write (without rename) would. */
export function manifestFixtureHooks(dir: string) {
  return {
    async corrupt(uuid: string) {
      const file = path.join(dir, `${uuid}.json`)
      const json = await readFile(file, 'utf8')
      await writeFile(file, json.slice(0, Math.floor(json.length / 2)))
    },
  }
}
