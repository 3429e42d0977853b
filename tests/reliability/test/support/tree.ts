import { createHash } from 'node:crypto'
import { lstat, readdir, readFile, readlink } from 'node:fs/promises'
import path from 'node:path'

/**
 * Every entry below `dir` as one line: path, type, mode, size, and the sha256 of a file's bytes
 * or a symlink's target. Two equal snapshots mean the tree is byte for byte the same.
 */
export async function snapshotTree(dir: string): Promise<string[]> {
  const lines: string[] = []
  async function walk(current: string): Promise<void> {
    const names = (await readdir(current)).sort()
    for (const name of names) {
      const full = path.join(current, name)
      const rel = path.relative(dir, full)
      const info = await lstat(full)
      const mode = (info.mode & 0o7777).toString(8)
      if (info.isSymbolicLink()) lines.push(`${rel}\tlink\t${await readlink(full)}`)
      else if (info.isDirectory()) {
        lines.push(`${rel}\tdir\t${mode}`)
        await walk(full)
      } else if (info.isFile()) {
        const digest = createHash('sha256')
          .update(await readFile(full))
          .digest('hex')
        lines.push(`${rel}\tfile\t${mode}\t${info.size}\t${digest}`)
      } else lines.push(`${rel}\tother\t${mode}`)
    }
  }
  await walk(dir)
  return lines
}

export async function sha256File(file: string): Promise<string | null> {
  try {
    return `sha256-${createHash('sha256')
      .update(await readFile(file))
      .digest('base64')}`
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null
    throw error
  }
}
