import { readdir, readFile, utimes } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { contentAddressOf, createS3StoreFromEnv, parseS3Url } from '../../store-s3/src/index.js'
import { CREDENTIALS, type S3TestServer, startS3Server } from '../../store-s3/test/server.js'
import { cleanEnv, json, sandbox } from './helpers.js'

// gc on a shared bucket and the undo snapshots of restores. A machine's restore keeps what it
// replaced under snapshot keys in the bucket; its undo (which names them) stays on that machine.
// gc on another machine must keep those, however old, and still free the snapshot keys nothing
// holds (a restore killed after storing them) once they are past the grace, but not while a
// restore may still be running.
const A = 'node_modules/lodash/index.js'
const SHIFTED = fileURLToPath(new URL('./fixtures/shifted-clock.mjs', import.meta.url))
const HOUR = 60 * 60 * 1000

let s3: S3TestServer
beforeAll(async () => {
  s3 = await startS3Server()
})
afterAll(() => s3?.stop())

/** A snapshot key as a restore that started at `startedMs` names it (core's snapshotKey). */
const snapshotKeyAt = (uuid: string, startedMs: number, tail: string) =>
  `socket:patch:backup:${uuid}:snapshot-${startedMs.toString(36)}.0badc0de-${tail}`

/** Dates every object of the prefix `ms` back or forth: s3rver's LastModified is its file's mtime. */
async function shiftObjects(prefix: string, ms: number, only?: (name: string) => boolean) {
  const root = path.join(s3.directory, s3.bucket)
  for (const entry of await readdir(path.join(root, prefix), { recursive: true })) {
    const file = path.join(root, prefix, entry)
    if (!file.endsWith('._S3rver_object') || (only && !only(file))) continue
    const when = new Date(Date.now() + ms)
    await utimes(file, when, when)
  }
}

describe('gc on a shared bucket, and restores', () => {
  it("keeps another machine's undo however old; frees unheld snapshot keys past the grace, not younger", async () => {
    const url = `s3://${s3.bucket}/undo`
    const env = cleanEnv(s3.env)
    const n = await sandbox({ [A]: 'module.exports = 1\n' })
    const m = await sandbox()
    try {
      const onN = (args: string[]) =>
        n.cli(['--store', url, ...args], { env: { ...env, HOME: path.join(n.store, 'home') } })
      // Machine N backs up, the file changes, and a forced restore keeps the changed bytes for undo.
      expect((await onN(['backup', 'fix-1', A])).code).toBe(0)
      await n.write(A, 'changed on machine N\n')
      const restored = await onN(['restore', 'fix-1', '--force', '--json'])
      expect(restored.code, restored.stderr).toBe(0)

      // What a restore killed after storing its snapshot and before recording it leaves: a
      // snapshot key no manifest names. One from a restore three hours ago, one from ten minutes.
      const store = createS3StoreFromEnv({
        ...parseS3Url(url),
        env,
        clientConfig: { credentials: CREDENTIALS },
      })
      const now = Date.now()
      const stale = snapshotKeyAt('fix-1', now - HOUR, '00000000000000aa')
      const running = snapshotKeyAt('fix-1', now + 110 * 60 * 1000, '00000000000000bb')
      const staleBytes = await store.put(stale, Buffer.from('left by a killed restore'))
      await store.put(running, Buffer.from('of a restore still running'))

      // Two hours pass. Every object is that old, but the running restore's, ten minutes.
      await shiftObjects('undo', -2 * HOUR)
      await shiftObjects('undo', 110 * 60 * 1000, (file) =>
        file.includes('0badc0de-00000000000000bb'),
      )
      const onM = (args: string[]) =>
        m.cli(['--store', url, ...args], {
          env: { ...env, HOME: path.join(m.store, 'home'), SHIFTED_CLOCK_MS: String(2 * HOUR) },
          nodeArgs: ['--import', SHIFTED],
        })
      const gc = await onM(['gc', '--json'])
      expect(gc.code, gc.stderr).toBe(0)
      // Only the killed restore's leftover went: not N's undo, not the running restore's.
      expect(json(gc)).toMatchObject({ removedKeys: 1 })
      await expect(store.has(stale)).resolves.toBe(false)
      const address = contentAddressOf(staleBytes.integrity)
      expect(await s3.objects()).not.toContain(`undo/content/sha256/${address?.hex}`)
      await expect(store.has(running)).resolves.toBe(true)

      // N's undo still has every byte it needs.
      const undone = await onN(['undo', 'fix-1', '--json'])
      expect(undone.code, undone.stderr).toBe(0)
      expect(await readFile(path.join(n.project, A), 'utf8')).toBe('changed on machine N\n')
      store.client.destroy()
    } finally {
      await n.remove()
      await m.remove()
    }
  })
})
