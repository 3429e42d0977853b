import { PassThrough } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { formatBytes } from '../src/output/bytes.js'
import { human } from '../src/output/human.js'
import { createProgress } from '../src/output/progress.js'
import { colorEnabled, createStyle } from '../src/output/style.js'
import { table } from '../src/output/table.js'

describe('formatting', () => {
  it('formats sizes for people', () => {
    expect(formatBytes(0)).toBe('0 B')
    expect(formatBytes(1023)).toBe('1023 B')
    expect(formatBytes(1536)).toBe('1.5 KiB')
    expect(formatBytes(5 * 1024 * 1024)).toBe('5.0 MiB')
    expect(formatBytes(300 * 1024 ** 3)).toBe('300 GiB')
  })

  it('aligns columns, right-aligning numbers, ignoring colour codes', () => {
    const s = createStyle(true)
    expect(
      table(
        [
          ['a', '1', s.red('x')],
          ['long-name', '100', 'y'],
        ],
        { right: [1] },
      ),
    ).toBe(`a            1  ${s.red('x')}\nlong-name  100  y\n`)
  })

  it('colours only on a terminal, and never against --no-color or NO_COLOR', () => {
    expect(colorEnabled({ flag: undefined, env: {}, isTTY: true })).toBe(true)
    expect(colorEnabled({ flag: undefined, env: {}, isTTY: false })).toBe(false)
    expect(colorEnabled({ flag: false, env: { FORCE_COLOR: '1' }, isTTY: true })).toBe(false)
    expect(colorEnabled({ flag: undefined, env: { NO_COLOR: '1' }, isTTY: true })).toBe(false)
    expect(colorEnabled({ flag: undefined, env: { FORCE_COLOR: '1' }, isTTY: false })).toBe(true)
  })

  it('puts problems on stderr, so --quiet keeps them', () => {
    const s = createStyle(false)
    const out = human.verify(
      {
        patches: 1,
        files: 2,
        ok: 1,
        problems: [{ uuid: 'p', path: 'a.js', code: 'BLOB_MISSING', message: 'gone' }],
      },
      s,
    )
    expect(out.stdout).toBe('Verified 2 files in 1 patch: 1 ok, 1 problem\n')
    expect(out.stderr).toMatch(/^Corrupt or missing:\n {2}p {2}a\.js {2}BLOB_MISSING\n/)
  })
})

describe('progress bar', () => {
  function fakeTty() {
    const stream = Object.assign(new PassThrough(), { isTTY: true, columns: 100 })
    let text = ''
    stream.on('data', (d) => {
      text += d
    })
    return { stream, text: () => text }
  }

  it('draws nothing for small work', async () => {
    const tty = fakeTty()
    const bar = await createProgress(tty.stream)
    bar.start('backup', { files: 3, bytes: 100 })
    bar.advance({ files: 3, bytes: 100 })
    bar.stop()
    expect(tty.text()).toBe('')
  })

  it('draws bytes and files for many files, and clears itself', async () => {
    const tty = fakeTty()
    const bar = await createProgress(tty.stream)
    bar.start('restore', { files: 40, bytes: 40 * 1024 })
    bar.advance({ files: 20, bytes: 20 * 1024 })
    bar.stop()
    expect(tty.text()).toContain('restore')
    expect(tty.text()).toMatch(/0 B \/ 40\.0 KiB \| 0\/40 files/)
  })
})
