// contentAddress reads a plain `<algorithm>-<base64>` itself and hands anything else to ssri. Both
// roads must file content exactly where cacache's own contentPath does (for the strings this
// store writes and any single hash), and where the ssri-only version did before (for the rest).
import { createHash, randomBytes } from 'node:crypto'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import ssri from 'ssri'
import { describe, expect, it } from 'vitest'
import { contentAddress, contentPathFor } from '../src/paths.js'

const require = createRequire(import.meta.url)
const cacacheContentPath = require('cacache/lib/content/path.js') as (
  cache: string,
  integrity: string,
) => string

/** The implementation before the plain parser: ssri's parse and pickAlgorithm for every string. */
function bySsri(integrity: string) {
  const parsed = ssri.parse(integrity)
  const algorithm = parsed.pickAlgorithm()
  const hex = Buffer.from(parsed[algorithm]?.[0]?.digest ?? '', 'base64').toString('hex')
  return { algorithm, hex }
}

const digest = (algorithm: string, data: Buffer) =>
  `${algorithm}-${createHash(algorithm).update(data).digest('base64')}`

const cache = join('/', 'tmp', 'cache')

describe('contentAddress', () => {
  it("files every single hash where cacache's contentPath and ssri do", () => {
    for (let i = 0; i < 200; i++) {
      const data = randomBytes(i)
      for (const algorithm of ['sha1', 'sha256', 'sha384', 'sha512']) {
        const integrity = digest(algorithm, data)
        expect(contentAddress(integrity)).toEqual(bySsri(integrity))
        expect(contentPathFor(cache, integrity)).toBe(cacacheContentPath(cache, integrity))
      }
    }
  })

  it('leaves anything else to ssri, with the same result as before', () => {
    const data = randomBytes(64)
    const sha256 = digest('sha256', data)
    const sha512 = digest('sha512', data)
    const unusual = [
      `${sha256} ${sha512}`, // two hashes: the strongest
      `${sha512} ${sha256}`,
      `${sha256}?opt`, // an option
      ` ${sha256}\n`, // whitespace around it
      `${sha256} sha1-bogus`,
      `bogus-${sha256.slice(7)} ${sha256}`,
    ]
    for (const integrity of unusual) {
      expect(contentAddress(integrity), integrity).toEqual(bySsri(integrity))
    }
    for (const bad of ['', 'sha256-', 'nope', `${sha256.slice(0, -4)}=`, 'md5-abc']) {
      expect(() => contentAddress(bad), bad).toThrow()
    }
  })
})
