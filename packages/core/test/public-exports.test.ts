import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'
import { describe, expect, it } from 'vitest'
import * as core from '../src/index.js'

/*
 * The names `@patch-backup/core` exports, committed so that moving files inside `src` cannot add,
 * drop or rename one unnoticed. Changing the public API means changing public-exports.json too.
 */
const committed = JSON.parse(
  await readFile(new URL('./public-exports.json', import.meta.url), 'utf8'),
) as { values: string[]; types: string[] }

/** Every name the entry exports to TypeScript, values and types alike. */
function declaredExports(): string[] {
  const entry = fileURLToPath(new URL('../src/index.ts', import.meta.url))
  const program = ts.createProgram([entry], {
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    types: [],
    noEmit: true,
  })
  const checker = program.getTypeChecker()
  const source = program.getSourceFile(entry)
  const module = source && checker.getSymbolAtLocation(source)
  if (!module) throw new Error(`cannot read the exports of ${entry}`)
  return checker.getExportsOfModule(module).map((symbol) => symbol.name)
}

describe('public exports', () => {
  it('the entry exports at runtime exactly the committed values', () => {
    expect(Object.keys(core).sort()).toEqual(committed.values)
  })

  it('the entry declares exactly the committed values and types', () => {
    const expected = [...new Set([...committed.values, ...committed.types])].sort()
    expect(declaredExports().sort()).toEqual(expected)
  })
})
