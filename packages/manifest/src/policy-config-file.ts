import { readFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import {
  PatchBackupError,
  POLICY_CONFIG_FILE,
  type PolicyConfig,
  parsePolicyConfig,
} from '@patch-backup/core'

/**
 * Reads and validates `<root>/patch-backup.config.json` (see `parsePolicyConfig` in core for the
 * schema). Resolves `undefined` when there is no such file; anything malformed throws
 * `INVALID_CONFIG` naming the file and the field. Relative key and salt paths resolve against `root`.
 */
export async function loadPolicyConfig(root: string): Promise<PolicyConfig | undefined> {
  const dir = resolve(root)
  const file = join(dir, POLICY_CONFIG_FILE)
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw new PatchBackupError(
      'INVALID_CONFIG',
      `Cannot read ${file}: ${(error as Error).message}.`,
      { cause: error, path: file },
    )
  }
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (error) {
    throw new PatchBackupError(
      'INVALID_CONFIG',
      `${file} is not valid JSON (${(error as Error).message}). Fix or remove it.`,
      { cause: error, path: file },
    )
  }
  return parsePolicyConfig(value, { source: file, baseDir: dir })
}
