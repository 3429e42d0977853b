import { visibleLength } from './style.js'

export interface TableOptions {
  /** Columns to right-align (numbers); the rest align left. */
  right?: readonly number[]
  indent?: string
}

/** Rows as lines with every column padded to its widest cell; the last column is not padded. */
export function table(rows: readonly (readonly string[])[], options: TableOptions = {}): string {
  const widths: number[] = []
  for (const row of rows) {
    row.forEach((cell, i) => {
      widths[i] = Math.max(widths[i] ?? 0, visibleLength(cell))
    })
  }
  const indent = options.indent ?? ''
  return rows
    .map((row) => {
      const cells = row.map((cell, i) => {
        const pad = ' '.repeat((widths[i] ?? 0) - visibleLength(cell))
        if (options.right?.includes(i)) return pad + cell
        return i === row.length - 1 ? cell : cell + pad
      })
      return `${indent}${cells.join('  ')}\n`
    })
    .join('')
}
