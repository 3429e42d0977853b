import { sha256Integrity } from '@patch-backup/core'
import { describe, expect, it } from 'vitest'
import { createMemoryStore } from '../src/memory/store.js'
import type { Snapshot } from '../src/restore/journal.js'
import { type PackCache, packedBytes, storePacks } from '../src/restore/snapshot-pack.js'
import type { BackupStore } from '../src/types.js'

const PREFIX = 'socket:patch:backup:p:snapshot-'

/** A memory store that counts the blobs it opens. */
function countingStore(): BackupStore & { opened: number } {
  const store = createMemoryStore()
  const counting = Object.assign(Object.create(store) as BackupStore, { opened: 0 })
  counting.open = async (key, integrity) => {
    counting.opened++
    return store.open(key, integrity)
  }
  return counting
}

const target = (text: string) => ({
  bytes: Buffer.from(text),
  integrity: sha256Integrity(text),
  mode: 0o644,
})

describe('snapshot packs', () => {
  it('splits targets into packs of about 1 MiB and gives each its slice back', async () => {
    const store = countingStore()
    const targets = Array.from({ length: 40 }, (_, i) => target(`${i} `.repeat(20_000 + i)))
    const keys: string[] = []
    const snapshots = await storePacks(store, targets, (n) => `${PREFIX}${n}`, keys)
    expect(keys.length).toBeGreaterThan(1)
    expect(keys.length).toBeLessThan(10)
    const cache: PackCache = new Map()
    for (const [i, snapshot] of snapshots.entries()) {
      const bytes = await packedBytes(store, snapshot.key as string, snapshot, cache)
      expect(bytes.equals(targets[i]?.bytes as Buffer)).toBe(true)
    }
    expect(store.opened).toBe(keys.length)
  })

  it('holds a few packs at most, and reads a pack named under many keys once', async () => {
    const store = countingStore()
    const packs = []
    for (let n = 0; n < 10; n++) {
      const [snapshot] = await storePacks(store, [target(`pack ${n}`)], () => `${PREFIX}${n}`)
      packs.push(snapshot as NonNullable<typeof snapshot>)
    }
    const cache: PackCache = new Map()
    for (const snapshot of packs) {
      await packedBytes(store, snapshot.key as string, snapshot, cache)
      expect(cache.size).toBeLessThanOrEqual(4)
    }
    // A hand-edited manifest naming one pack under 50 keys: one read, not 50 copies.
    store.opened = 0
    const one = packs[0] as (typeof packs)[number]
    const again: PackCache = new Map()
    for (let i = 0; i < 50; i++) await packedBytes(store, `${PREFIX}x${i}`, one, again)
    expect(store.opened).toBe(1)
  })

  it('keeps the packs used last, and never a failed read', async () => {
    const store = countingStore()
    const packs: Snapshot[] = []
    for (let n = 0; n < 5; n++) {
      const [snapshot] = await storePacks(store, [target(`pack ${n}`)], () => `${PREFIX}${n}`)
      packs.push(snapshot as NonNullable<typeof snapshot>)
    }
    const cache: PackCache = new Map()
    const use = (n: number) => packedBytes(store, `${PREFIX}${n}`, packs[n] as Snapshot, cache)
    for (const n of [0, 1, 2, 3, 0, 4, 0]) await use(n)
    // 0 was used again before 4 came in: 1 went, 0 stayed.
    expect(store.opened).toBe(5)
    // A read that fails once is tried again next time, not answered from the cache.
    const open = store.open
    store.open = async () => {
      store.open = open
      throw new Error('EIO')
    }
    const fresh: PackCache = new Map()
    const one = () => packedBytes(store, `${PREFIX}1`, packs[1] as Snapshot, fresh)
    await expect(one()).rejects.toThrow()
    await expect(one()).resolves.toEqual(Buffer.from('pack 1'))
  })

  it('refuses a pack field that is not one a restore writes, before reading anything', async () => {
    const store = countingStore()
    const [snapshot] = await storePacks(store, [target('bytes')], () => `${PREFIX}0`)
    const base = snapshot as NonNullable<typeof snapshot>
    for (const pack of [
      null,
      'pack',
      { ...base.pack, offset: -1 },
      { ...base.pack, offset: 1 },
      { ...base.pack, size: 64 * 1024 * 1024 },
      { ...base.pack, integrity: 7 },
    ]) {
      await expect(
        packedBytes(store, base.key as string, { ...base, pack } as never, new Map()),
      ).rejects.toMatchObject({ code: 'INVALID_MANIFEST' })
    }
    expect(store.opened).toBe(0)
  })
})
