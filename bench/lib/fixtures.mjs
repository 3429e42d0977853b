// Project trees to back up: distinct random bytes per file, laid out like node_modules.
import { randomBytes } from 'node:crypto'
import { createWriteStream } from 'node:fs'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { pipeline } from 'node:stream/promises'

export const KIB = 1024
export const MIB = 1024 * KIB

export async function workDir(label) {
  return mkdtemp(path.join(os.tmpdir(), `pb-bench-${label}-`))
}

export async function removeDir(dir) {
  await rm(dir, { recursive: true, force: true, maxRetries: 3 })
}

/**
 * Writes `count` files of `size` random bytes under `project`, 50 packages deep like a real
 * node_modules, and resolves their project-relative paths.
 */
export async function makeFiles(project, count, size, prefix = 'node_modules') {
  const files = []
  const dirs = new Set()
  for (let i = 0; i < count; i++) {
    const dir = `${prefix}/pkg-${i % 50}/lib`
    files.push(`${dir}/file-${i}.js`)
    dirs.add(dir)
  }
  for (const dir of dirs) await mkdir(path.join(project, dir), { recursive: true })
  const pool = 16
  for (let i = 0; i < files.length; i += pool) {
    await Promise.all(
      files.slice(i, i + pool).map((f) => writeFile(path.join(project, f), randomBytes(size))),
    )
  }
  return files
}

/** One file of `bytes` random bytes, streamed (never held in memory). */
export async function makeBigFile(file, bytes) {
  await mkdir(path.dirname(file), { recursive: true })
  const block = MIB
  async function* chunks() {
    for (let sent = 0; sent < bytes; sent += block) yield randomBytes(Math.min(block, bytes - sent))
  }
  await pipeline(chunks, createWriteStream(file))
}
