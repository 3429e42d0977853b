/** The one JSON document a `--json` run prints, success or failure. */
export function jsonDocument(data: unknown): string {
  return `${JSON.stringify(data, null, 2)}\n`
}

export function jsonError(code: string, message: string): string {
  return jsonDocument({ error: { code, message } })
}
