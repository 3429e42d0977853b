import { isPatchBackupError, type ManifestRepository, type PatchManifest } from '@patch-backup/core'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { Factory, ManifestFixture } from './fixtures.js'

export function sampleManifest(
  uuid: string,
  files: string[] = ['node_modules/lodash/index.js'],
): PatchManifest {
  return {
    uuid,
    patchedAt: '2025-01-14T12:00:00.000Z',
    files: Object.fromEntries(
      files.map((file) => [
        file,
        {
          integrity: 'sha256-qUiQTy8PR5uPgZdpSzAYSw0u0cHNKh7A+4XSmaGSpEc=',
          size: 12345,
          backedUpAt: '2025-01-14T12:00:00.000Z',
          originalPath: file,
        },
      ]),
    ),
  }
}

const BAD_UUIDS = ['../x', 'a/b', '', 'x'.repeat(200), 'a\0b', '.', '..']

/** The behaviour every `ManifestRepository` must have. Call it from the adapter's test file. */
export function runManifestRepositorySuite(name: string, factory: Factory<ManifestFixture>): void {
  describe(`ManifestRepository conformance: ${name}`, () => {
    let fixture: ManifestFixture
    let repo: ManifestRepository
    beforeEach(async () => {
      fixture = await factory()
      repo = fixture.repo
    })
    afterEach(async () => {
      await fixture.cleanup?.()
    })

    describe('read and write', () => {
      it('has nothing for an unknown uuid', async () => {
        await expect(repo.get('unknown')).resolves.toBeUndefined()
        await expect(repo.list()).resolves.toEqual([])
      })

      it('stores what update returns and gives it back', async () => {
        const manifest = sampleManifest('abc-123')
        await expect(repo.update('abc-123', () => manifest)).resolves.toEqual(manifest)
        await expect(repo.get('abc-123')).resolves.toEqual(manifest)
      })

      it('passes the current manifest to the updater', async () => {
        await repo.update('abc-123', () => sampleManifest('abc-123', ['a.js']))
        const seen: (PatchManifest | undefined)[] = []
        await repo.update('abc-123', (current) => {
          seen.push(current)
          return current
        })
        expect(seen).toEqual([sampleManifest('abc-123', ['a.js'])])
      })

      it('keeps fields it does not know about', async () => {
        const manifest = {
          ...sampleManifest('extra'),
          tool: { name: 'socket', version: 2 },
        }
        const file = manifest.files['node_modules/lodash/index.js']!
        file.patchedIntegrity = 'sha256-AAAA'
        await repo.update('extra', () => manifest)
        await expect(repo.get('extra')).resolves.toEqual(manifest)
      })

      it('hands out copies, so callers cannot change what is stored', async () => {
        await repo.update('copy', () => sampleManifest('copy'))
        const first = await repo.get('copy')
        first!.files = {}
        await expect(repo.get('copy')).resolves.toEqual(sampleManifest('copy'))
      })

      it('deletes when the updater returns undefined', async () => {
        await repo.update('gone', () => sampleManifest('gone'))
        await expect(repo.update('gone', () => undefined)).resolves.toBeUndefined()
        await expect(repo.get('gone')).resolves.toBeUndefined()
      })

      it('leaves the manifest as it was when the updater throws', async () => {
        await repo.update('safe', () => sampleManifest('safe'))
        await expect(
          repo.update('safe', () => {
            throw new Error('boom')
          }),
        ).rejects.toThrow('boom')
        await expect(repo.get('safe')).resolves.toEqual(sampleManifest('safe'))
      })
    })

    describe('delete and list', () => {
      it('says whether it deleted anything', async () => {
        await repo.update('d', () => sampleManifest('d'))
        await expect(repo.delete('d')).resolves.toBe(true)
        await expect(repo.delete('d')).resolves.toBe(false)
        await expect(repo.get('d')).resolves.toBeUndefined()
      })

      it('lists every uuid, sorted', async () => {
        for (const uuid of ['b-2', 'a-1', 'c-3'])
          await repo.update(uuid, () => sampleManifest(uuid))
        await repo.delete('b-2')
        await expect(repo.list()).resolves.toEqual(['a-1', 'c-3'])
      })
    })

    describe('concurrency', () => {
      it('loses no update among 100 concurrent ones', async () => {
        await Promise.all(
          Array.from({ length: 100 }, (_, i) =>
            repo.update('busy', (current) => {
              const base = current ?? {
                uuid: 'busy',
                patchedAt: '2025-01-14T12:00:00.000Z',
                files: {},
              }
              const file = `f${i}.js`
              return { ...base, files: { ...base.files, ...sampleManifest('busy', [file]).files } }
            }),
          ),
        )
        const manifest = await repo.get('busy')
        expect(Object.keys(manifest!.files)).toHaveLength(100)
      })
    })

    describe('bad input', () => {
      for (const uuid of BAD_UUIDS) {
        it(`refuses uuid ${JSON.stringify(uuid.slice(0, 20))} with INVALID_UUID`, async () => {
          for (const call of [
            () => repo.get(uuid),
            () => repo.update(uuid, () => sampleManifest('x')),
            () => repo.delete(uuid),
          ]) {
            const error = await call().then(
              () => undefined,
              (e: unknown) => e,
            )
            expect(isPatchBackupError(error, 'INVALID_UUID')).toBe(true)
          }
          await expect(repo.list()).resolves.toEqual([])
        })
      }

      it('reports a damaged manifest as MANIFEST_CORRUPT and keeps the others working', async (ctx) => {
        if (!fixture.corrupt) ctx.skip()
        await repo.update('bad', () => sampleManifest('bad'))
        await repo.update('good', () => sampleManifest('good'))
        await fixture.corrupt!('bad')
        const error = await repo.get('bad').then(
          () => undefined,
          (e: unknown) => e,
        )
        expect(isPatchBackupError(error, 'MANIFEST_CORRUPT')).toBe(true)
        await expect(repo.update('bad', (m) => m)).rejects.toMatchObject({
          code: 'MANIFEST_CORRUPT',
        })
        await expect(repo.get('good')).resolves.toEqual(sampleManifest('good'))
        await expect(repo.list()).resolves.toContain('good')
      })
    })
  })
}
