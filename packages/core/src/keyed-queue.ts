/** Runs tasks one after another per key; different keys run freely. */
export class KeyedQueue {
  private readonly tails = new Map<string, Promise<unknown>>()

  /** Whether a task for `key` is running or waiting. */
  has(key: string): boolean {
    return this.tails.has(key)
  }

  run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve()
    const result = previous.then(task, task)
    const tail = result.then(
      () => undefined,
      () => undefined,
    )
    this.tails.set(key, tail)
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key)
    })
    return result
  }
}
