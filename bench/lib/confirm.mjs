// A quick run fails only on a check that stays gross when its scenario is measured again: a real
// regression repeats, a burst of load from whatever else shares the machine does not.

/**
 * measure(groups) → { rows (each tagged with `scenario`), facts }; evaluate({ rows, facts }) →
 * checks (each with `name`, `scenario`, `gross`). Re-measures only the scenarios behind gross
 * checks, up to `attempts` measurements in all, and returns the last rows, facts and checks with
 * `gross` true only for checks that were gross on every measurement of their scenario.
 */
export async function measureConfirmed({ groups, measure, evaluate, attempts, onRetry }) {
  let { rows, facts } = await measure(groups)
  let checks = evaluate({ rows, facts })
  let gross = checks.filter((c) => c.gross)
  const remeasured = []
  for (let attempt = 2; attempt <= attempts && gross.length > 0; attempt++) {
    const again = [...new Set(gross.map((c) => c.scenario))]
    onRetry?.({ attempt, attempts, scenarios: again, gross })
    remeasured.push({ attempt, scenarios: again, gross: gross.map((c) => c.name) })
    const fresh = await measure(again)
    rows = [...rows.filter((r) => !again.includes(r.scenario)), ...fresh.rows]
    facts = { ...facts, ...fresh.facts }
    const stillGross = new Set(gross.map((c) => c.name))
    checks = evaluate({ rows, facts })
    gross = checks.filter((c) => c.gross && stillGross.has(c.name))
  }
  const confirmed = new Set(gross)
  checks = checks.map((c) => ({ ...c, gross: confirmed.has(c) }))
  return { rows, facts, checks, remeasured }
}
