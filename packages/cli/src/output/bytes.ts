const UNITS = ['KiB', 'MiB', 'GiB', 'TiB', 'PiB']

/** `1536` -> `1.5 KiB`; bytes below 1 KiB as they are. */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 1024) return `${bytes} B`
  let value = bytes / 1024
  let unit = 0
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024
    unit++
  }
  return `${value >= 100 ? value.toFixed(0) : value.toFixed(1)} ${UNITS[unit]}`
}
