// A manifest held as the text it is written as, so that recording one more backup costs the
// bytes of that entry rather than a copy and a serialization of every entry before it. A patch
// backed up one file per call (the seed's API) rewrote and re-serialized its whole manifest at
// each call: O(n) objects and text per call, O(n²) per patch, which at 1,000 files was most of a
// backup's time. The text is byte for byte `JSON.stringify(manifest, null, 2) + '\n'` (the seed's
// format); entries are appended to it, and anything else (a removal, an overwrite, a key an
// object would order differently) rebuilds it from the pieces.
//
// Every value kept here is the parse of its own text, deep-frozen, so it can never change after
// its text was taken; whatever a caller hands in is serialized afresh and replaced by such a copy.

import { type BackupInfo, PatchBackupError, type PatchManifest } from '@patch-backup/core'
import { entryShapeProblem, manifestShapeProblem, topLevelShapeProblem } from './manifest-file.js'

/** Freezes a value this module parsed, all the way down. */
export function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const child of Object.values(value)) deepFreeze(child)
    Object.freeze(value)
  }
  return value
}

const FIELD = 0
const ENTRY = 1
const INDENT = ['\n  ', '\n    ']
/** Canonical objects this module made, and their text at a depth (top-level field, entry). */
const textAt = [new WeakMap<object, string>(), new WeakMap<object, string>()]

interface Piece {
  text: string
  value: unknown
  fresh: boolean
}

/**
 * Values of a file this module read whole and froze (see `ManifestDocument.read`): canonical
 * already, their text is made the first time something needs it.
 */
const readValues = [new WeakSet<object>(), new WeakSet<object>()]

/** A canonical value's piece, its text serialized on first use. */
function lazyPiece(value: unknown, depth: number): Piece {
  let text: string | undefined
  return {
    get text() {
      if (text === undefined) {
        text = (JSON.stringify(value, null, 2) as string).replaceAll('\n', INDENT[depth] as string)
        if (typeof value === 'object' && value !== null) textAt[depth]?.set(value, text)
      }
      return text
    },
    value,
    fresh: false,
  }
}

/** `value`'s text at `depth` and the canonical value to keep; `undefined` where JSON leaves it out. */
function piece(value: unknown, depth: number): Piece | undefined {
  if (typeof value === 'object' && value !== null) {
    const known = textAt[depth]?.get(value)
    if (known !== undefined) return { text: known, value, fresh: false }
    // Only at the depth it was read at: a top-level field moved under `files` is checked as an entry.
    if (readValues[depth]?.has(value)) return lazyPiece(value, depth)
  }
  const raw = JSON.stringify(value, null, 2)
  if (raw === undefined) return undefined
  // JSON escapes newlines inside strings, so every raw newline is a line break to indent.
  const text = raw.replaceAll('\n', INDENT[depth] as string)
  const canonical = deepFreeze(JSON.parse(raw))
  if (typeof canonical === 'object' && canonical !== null) textAt[depth]?.set(canonical, text)
  return { text, value: canonical, fresh: true }
}

/** As JSON.parse would: an own property even for `__proto__`. */
function setOwn(target: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__') {
    Object.defineProperty(target, key, {
      value,
      enumerable: true,
      writable: true,
      configurable: true,
    })
  } else target[key] = value
}

/** Keys an object orders before all others (array indices): appending one would change the order. */
function isIndexKey(key: string): boolean {
  return /^(?:0|[1-9]\d{0,9})$/.test(key) && Number(key) < 2 ** 32 - 1
}

function invalid(path: string, problem: string, cause?: unknown): PatchBackupError {
  return new PatchBackupError(
    'INVALID_MANIFEST',
    `Refusing to write ${path}: the update function returned a manifest that could not be read back (${problem}).`,
    { path, cause },
  )
}

/**
 * The start of a manifest's bytes: the first `length` bytes of `bytes`. Documents made by appending
 * share one buffer; only the one whose prefix ends where the buffer's written part ends
 * (`owner.end`) may append in place, any other copies first, so no document's bytes ever change.
 */
interface Head {
  bytes: Buffer
  length: number
  owner: { end: number }
}

/** `head` with `text` appended: in place when `head` is the longest prefix of its buffer. */
function append(head: Head, text: string): Head {
  const size = Buffer.byteLength(text)
  const length = head.length + size
  let { bytes, owner } = head
  if (owner.end !== head.length || length > bytes.length) {
    const grown = Buffer.allocUnsafe(Math.max(length * 2, 4096))
    bytes.copy(grown, 0, 0, head.length)
    bytes = grown
    owner = { end: head.length }
  }
  bytes.write(text, head.length, 'utf8')
  owner.end = length
  return { bytes, length, owner }
}

export class ManifestDocument {
  /** Top-level fields in order; `files` holds its place. */
  private readonly fields: Map<string, Piece>
  private readonly files: Map<string, Piece>
  /** The bytes up to the end of the last entry (a prefix of a shared buffer), and the rest. */
  private head!: Head
  private tail!: Buffer
  private view: PatchManifest | undefined

  private constructor(
    fields: Map<string, Piece>,
    files: Map<string, Piece>,
    text?: { head: Head; tail: Buffer },
  ) {
    this.fields = fields
    this.files = files
    if (text) Object.assign(this, text)
    else this.layOut()
  }

  /**
   * The document of `value` (an update function's result, or a parsed file), checked to read back
   * as a manifest of `uuid`; INVALID_MANIFEST otherwise. Entries it has seen before are reused.
   */
  static from(value: unknown, uuid: string, path: string): ManifestDocument {
    if (value instanceof Promise) {
      throw new PatchBackupError(
        'INVALID_MANIFEST',
        `The update function for ${path} returned a Promise; it must return the next manifest synchronously.`,
        { path },
      )
    }
    const problem = manifestShapeProblem(value, uuid, { entries: false })
    if (problem !== undefined) throw invalid(path, problem)
    const top = value as Record<string, unknown>
    try {
      if (
        typeof top.toJSON === 'function' ||
        typeof (top.files as { toJSON?: unknown }).toJSON === 'function'
      ) {
        // Whatever toJSON makes of it, as JSON.stringify would.
        return ManifestDocument.from(JSON.parse(JSON.stringify(top)), uuid, path)
      }
      const fields = new Map<string, Piece>()
      const files = new Map<string, Piece>()
      for (const key of Object.keys(top)) {
        if (key === 'files') {
          fields.set(key, { text: '', value: undefined, fresh: false })
          const given = top.files as Record<string, unknown>
          for (const name of Object.keys(given)) {
            const entry = piece(given[name], ENTRY)
            if (entry === undefined) continue
            if (entry.fresh) {
              const bad = entryShapeProblem(name, entry.value)
              if (bad !== undefined) throw invalid(path, bad)
            }
            files.set(name, entry)
          }
          continue
        }
        const field = piece(top[key], FIELD)
        if (field !== undefined) fields.set(key, field)
      }
      const document = new ManifestDocument(fields, files)
      const readBack = topLevelShapeProblem(document.manifest, uuid)
      if (readBack !== undefined) throw invalid(path, readBack)
      return document
    } catch (error) {
      if (error instanceof PatchBackupError) throw error
      throw new PatchBackupError(
        'INVALID_MANIFEST',
        `Refusing to write ${path}: the manifest cannot be serialized as JSON (${(error as Error).message}).`,
        { path, cause: error },
      )
    }
  }

  /**
   * The document of a file read whole: `bytes`, their `text`, and its parse (already checked as a
   * manifest of `uuid`). When the file is in the canonical form this module writes, the document
   * takes the bytes as they are, freezes the parse in place and serializes no entry until one is
   * needed: a 100,000-entry manifest's first read under the lock cost three times a plain parse.
   */
  static read(
    bytes: Buffer,
    text: string,
    parsed: PatchManifest,
    uuid: string,
    path: string,
  ): ManifestDocument {
    const top = parsed as unknown as Record<string, unknown>
    const given = top.files as Record<string, unknown>
    const entryNames = Object.keys(given)
    // Bytes that are not UTF-8 decode to U+FFFD: the text may then match while the bytes do not.
    if (
      entryNames.length === 0 ||
      `${JSON.stringify(parsed, null, 2)}\n` !== text ||
      (text.includes('\uFFFD') && !bytes.equals(Buffer.from(text)))
    )
      return ManifestDocument.from(parsed, uuid, path)
    deepFreeze(parsed)
    const fields = new Map<string, Piece>()
    const files = new Map<string, Piece>()
    for (const key of Object.keys(top)) {
      const value = top[key]
      if (key === 'files') fields.set(key, { text: '', value: undefined, fresh: false })
      else fields.set(key, lazyPiece(value, FIELD))
      if (key !== 'files' && typeof value === 'object' && value !== null)
        readValues[FIELD]?.add(value)
    }
    for (const name of entryNames) {
      const entry = given[name] as object
      readValues[ENTRY]?.add(entry)
      files.set(name, lazyPiece(entry, ENTRY))
    }
    const tail = Buffer.from(tailOf(fields, true))
    const length = bytes.length - tail.length
    if (length < 0 || !bytes.subarray(length).equals(tail))
      return ManifestDocument.from(parsed, uuid, path)
    const document = new ManifestDocument(fields, files, {
      head: { bytes, length, owner: { end: length } },
      tail,
    })
    document.view = parsed
    return document
  }

  /** The file's text: the seed's format, 2-space indented JSON with a final newline. */
  get text(): string {
    return Buffer.concat(this.chunks()).toString('utf8')
  }

  /** The file's bytes, in pieces: write them in order. */
  chunks(): Buffer[] {
    return [this.head.bytes.subarray(0, this.head.length), this.tail]
  }

  /** Whether `bytes` are exactly this document's. */
  matches(bytes: Uint8Array): boolean {
    const { length } = this.head
    if (bytes.length !== length + this.tail.length) return false
    const file = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    return (
      file.subarray(length).equals(this.tail) &&
      file.subarray(0, length).equals(this.head.bytes.subarray(0, length))
    )
  }

  /** The manifest, deep-frozen; built on first use after a change. */
  get manifest(): PatchManifest {
    if (this.view === undefined) {
      const files: Record<string, unknown> = {}
      for (const [name, entry] of this.files) setOwn(files, name, entry.value)
      const manifest: Record<string, unknown> = {}
      for (const [key, field] of this.fields) {
        setOwn(manifest, key, key === 'files' ? Object.freeze(files) : field.value)
      }
      this.view = Object.freeze(manifest) as unknown as PatchManifest
    }
    return this.view
  }

  entry(file: string): BackupInfo | undefined {
    return this.files.get(file)?.value as BackupInfo | undefined
  }

  /**
   * A copy with `entries` recorded under their `originalPath`: a file that has one keeps it
   * unless `overwrite`. `undefined` when nothing changes. New files are appended to the text;
   * an overwrite rebuilds it.
   */
  withEntries(
    entries: readonly BackupInfo[],
    overwrite: boolean,
    path: string,
  ): ManifestDocument | undefined {
    const added = new Map<string, Piece>()
    let rebuild = false
    for (const given of entries) {
      const name = given.originalPath
      const had = this.files.has(name) || added.has(name)
      if (had && !overwrite) continue
      const entry = piece(given, ENTRY)
      const bad =
        entry === undefined
          ? `"files"[${JSON.stringify(name)}] is not an object`
          : entryShapeProblem(name, entry.value)
      if (bad !== undefined) throw invalid(path, bad)
      added.set(name, entry as Piece)
      if (had || isIndexKey(name)) rebuild = true
    }
    if (added.size === 0) return undefined
    const files = new Map(this.files)
    for (const [name, entry] of added) files.set(name, entry)
    if (rebuild || this.files.size === 0) return new ManifestDocument(this.fields, files)
    let appended = ''
    for (const [name, entry] of added) appended += `,\n    ${JSON.stringify(name)}: ${entry.text}`
    return new ManifestDocument(this.fields, files, {
      head: append(this.head, appended),
      tail: this.tail,
    })
  }

  /** Builds `head` and `tail` from the pieces. */
  private layOut(): void {
    const before: string[] = []
    for (const [key, field] of this.fields) {
      if (key === 'files') break
      before.push(`  ${JSON.stringify(key)}: ${field.text}`)
    }
    // An object (and so JSON.stringify) puts array-index keys first, in numeric order.
    const names = [...this.files.keys()]
    const indices = names.filter(isIndexKey).sort((a, b) => Number(a) - Number(b))
    const ordered =
      indices.length === 0 ? names : [...indices, ...names.filter((n) => !isIndexKey(n))]
    const entries = ordered.map(
      (name) => `    ${JSON.stringify(name)}: ${(this.files.get(name) as Piece).text}`,
    )
    const open = [...before, '  "files": {'].join(',\n')
    const head = Buffer.from(`{\n${open}${entries.length > 0 ? `\n${entries.join(',\n')}` : ''}`)
    this.head = { bytes: head, length: head.length, owner: { end: head.length } }
    this.tail = Buffer.from(tailOf(this.fields, entries.length > 0))
  }
}

/** The text after the last entry: the end of `files` and the top-level fields after it. */
function tailOf(fields: Map<string, Piece>, hasEntries: boolean): string {
  let after = ''
  let seenFiles = false
  for (const [key, field] of fields) {
    if (seenFiles) after += `,\n  ${JSON.stringify(key)}: ${field.text}`
    else seenFiles = key === 'files'
  }
  return `${hasEntries ? '\n  }' : '}'}${after}\n}\n`
}
