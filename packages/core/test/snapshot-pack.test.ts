import { sha256Integrity } from '@patch-backup/core'
import { describe, expect, it } from 'vitest'
import { createMemoryStore } from '../src/memory/store.js'
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
