import {
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  realpath,
  rm,
  symlink,
  writeFile,
} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { Readable } from 'node:stream'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { sha256Integrity, VerifyingStream } from '../src/index.js'
import { ensureParentInside, writeAtomically } from '../src/restore/safe-target.js'

describe('safe targets', () => {
  let root: string
  let outside: string
  beforeEach(async () => {
    root = await realpath(await mkdtemp(path.join(os.tmpdir(), 'pb-target-')))
    outside = await realpath(await mkdtemp(path.join(os.tmpdir(), 'pb-outside-')))
  })
  afterEach(async () => {
    await rm(root, { recursive: true, force: true })
    await rm(outside, { recursive: true, force: true })
  })

  it('leaves the target as it was when the source fails mid-way', async () => {
    const target = path.join(root, 'file.txt')
    await writeFile(target, 'before')
    const failing = new Readable({
      read() {
        this.push(Buffer.alloc(1024, 1))
        this.destroy(new Error('read failed'))
      },
    })
    await expect(writeAtomically(target, async () => failing)).rejects.toThrow('read failed')
    await expect(readFile(target, 'utf8')).resolves.toBe('before')
    expect(await readdir(root)).toEqual(['file.txt'])
  })

  it('leaves no temp file when an empty blob fails its check before the file is open', async () => {
    const target = path.join(root, 'file.txt')
    await writeFile(target, 'before')
    for (let i = 0; i < 20; i++) {
      // An empty (truncated) blob: the check fails as the stream ends, before the file is open.
      await expect(
        writeAtomically(target, async () => Readable.from([]), 0o644, [
          new VerifyingStream(sha256Integrity('x'), 1),
        ]),
      ).rejects.toMatchObject({ code: 'INTEGRITY_MISMATCH' })
    }
    await expect(readFile(target, 'utf8')).resolves.toBe('before')
    expect(await readdir(root)).toEqual(['file.txt'])
  })

  it('refuses to create directories through a symlink that leads outside', async () => {
    await symlink(outside, path.join(root, 'escape'))
    await expect(
      ensureParentInside(root, root, path.join(root, 'escape', 'deep', 'x.js')),
    ).rejects.toMatchObject({
      code: 'INVALID_PATH',
    })
    expect(await readdir(outside)).toEqual([])
  })

  it('follows symlinks that stay inside the project', async () => {
    await mkdir(path.join(root, 'real'))
    await symlink(path.join(root, 'real'), path.join(root, 'link'))
    await ensureParentInside(root, root, path.join(root, 'link', 'sub', 'x.js'))
    expect(await readdir(path.join(root, 'real'))).toEqual(['sub'])
  })
})
