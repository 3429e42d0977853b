/** Maps `items` through `fn` with at most `concurrency` calls in flight; results keep their order. */
export default async function pMap(items, fn, { concurrency }) {
  const results = new Array(items.length)
  let next = 0
  const worker = async () => {
    while (next < items.length) {
      const i = next++
      results[i] = await fn(items[i], i)
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker))
  return results
}
