// What the numbers must show. `target` is the goal (reported, never fails a run); `gross` is the
// line a quick CI run fails on: far enough from the target that noise on a shared machine cannot
// cross it, near enough to catch a real regression (a lost batch path, a per-call scan). Gross
// limits compare contenders doing the same kind of I/O (ours against ours or against naive): the
// floor's bare copyFile takes a few ms at quick sizes, so any ratio over it swings with load.
const MIB = 1024 * 1024

const timeOf = (rows, label, who) => rows.find((r) => r.label === label)?.times[who]

/**
 * Each check: { name, scenario, value (a ratio or bytes), target, met, gross, grossLimit? }.
 * `scenario` is the run.mjs group that measured it, so a gross check can be re-measured alone.
 */
export function evaluate(result) {
  const { rows, facts, config } = result
  const checks = []
  const small = config.small.label
  const pb = (label) => timeOf(rows, label, 'patch-backup')
  const fl = (label) => timeOf(rows, label, 'floor')
  const nv = (label) => timeOf(rows, label, 'naive')
  let scenario
  const ratio = (name, value, limit, { gross, atLeast = false } = {}) => {
    const ok = (v, l) => (atLeast ? v >= l : v <= l)
    checks.push({
      name,
      scenario,
      value,
      // A null limit: a guard for CI only, not one of the targets.
      target: limit === null ? undefined : `${atLeast ? '>=' : '<='} ${limit}x`,
      met: limit === null ? undefined : Number.isFinite(value) && ok(value, limit),
      grossLimit: gross === undefined ? undefined : `${atLeast ? '>=' : '<='} ${gross}x`,
      gross: gross !== undefined && !(Number.isFinite(value) && ok(value, gross)),
    })
  }

  if (rows.some((r) => r.label.startsWith(small))) {
    scenario = 'files'
    ratio(
      `${small}: batch backup / floor`,
      pb(`${small}: batch backup`) / fl(`${small}: batch backup`),
      1.25,
    )
    // A lost batch path makes a batch cost what the same files cost one by one (~0.2x now).
    ratio(
      `${small}: batch backup / one-by-one backup`,
      pb(`${small}: batch backup`) / pb(`${small}: backup one by one`),
      null,
      { gross: 0.6 },
    )
    ratio(
      `${small}: one-by-one backup / floor`,
      pb(`${small}: backup one by one`) / fl(`${small}: backup one by one`),
      4,
    )
    ratio(
      `${small}: naive / one-by-one backup (speed-up)`,
      nv(`${small}: backup one by one`) / pb(`${small}: backup one by one`),
      3,
      { gross: 0.33, atLeast: true },
    )
    ratio(
      `${small}: restore all / floor`,
      pb(`${small}: restore all`) / fl(`${small}: restore all`),
      2,
    )
    ratio(
      `${small}: restore all, all or nothing / floor`,
      pb(`${small}: restore all, all or nothing`) / fl(`${small}: restore all, all or nothing`),
      3,
    )
    if (facts.eventLoopP99Ms !== undefined) {
      checks.push({
        name: `${small}: event-loop delay p99 during one-by-one backup`,
        scenario,
        value: facts.eventLoopP99Ms,
        unit: 'ms',
        target: '<= 10 ms',
        met: facts.eventLoopP99Ms <= 10,
      })
    }
    // Gross checks against naive, which does the same kind of I/O as we do (cacache files, JSON):
    // the floor's single copyFile is too far from that for a noise-proof limit on this path.
    ratio(
      `${small}: restore all / naive restore`,
      pb(`${small}: restore all`) / nv(`${small}: restore all`),
      1,
      { gross: 3 },
    )
  }

  if (facts.bigFileBytes) {
    scenario = 'big'
    const label = `1 file of ${Math.round(facts.bigFileBytes / MIB)} MiB`
    ratio(
      `${label}: backup throughput / floor's`,
      fl(`${label}: backup`) / pb(`${label}: backup`),
      0.6,
      { atLeast: true, gross: 0.04 },
    )
    ratio(
      `${label}: restore throughput / floor's`,
      fl(`${label}: restore`) / pb(`${label}: restore`),
      0.6,
      { atLeast: true, gross: 0.04 },
    )
    const rss = facts.peakRss['patch-backup']
    checks.push({
      name: `${label}: patch-backup peak RSS`,
      scenario,
      value: rss / MIB,
      unit: 'MiB',
      target: '< 150 MiB',
      met: rss < 150 * MIB,
      grossLimit: '< 400 MiB',
      gross: !(rss < 400 * MIB),
    })
    checks.push({
      name: `${label}: restored bytes identical`,
      scenario,
      value: facts.identical ? 1 : 0,
      unit: 'bool',
      target: 'yes',
      met: facts.identical,
      grossLimit: 'yes',
      gross: !facts.identical,
    })
  }

  if (facts.scaling) {
    scenario = 'scaling'
    const { small: a, large: b } = config.scaling
    for (const call of ['getPatchMetadata', 'hasBackup']) {
      ratio(
        `${call}: ${b} patches / ${a} patches`,
        pb(`${call}, ${b} patches`) / pb(`${call}, ${a} patches`),
        1.5,
        { gross: 10 },
      )
    }
    ratio(
      `cleanupBackups: ${b} other patches / ${a}`,
      pb(`cleanupBackups, ${b} other patches`) / pb(`cleanupBackups, ${a} other patches`),
      3,
    )
    const ok = facts.scaling.freed && facts.scaling.sharedKept
    checks.push({
      name: 'cleanupBackups frees its own bytes and keeps shared ones',
      scenario,
      value: ok ? 1 : 0,
      unit: 'bool',
      target: 'yes',
      met: ok,
      grossLimit: 'yes',
      gross: !ok,
    })
  }

  if (facts.coldStart) {
    scenario = 'cli'
    ratio('patch-backup --version / node -e 0', facts.coldStart.cliMs / facts.coldStart.nodeMs, 2, {
      gross: 5,
    })
  }
  return checks
}
