import { setTimeout as sleep } from 'node:timers/promises'
import { describe, expect, it } from 'vitest'
import { KeyedQueue } from '../src/index.js'

describe('KeyedQueue', () => {
  it('runs tasks of one key in order, one at a time', async () => {
    const queue = new KeyedQueue()
    const log: string[] = []
    let running = 0
    const task = (name: string, ms: number) => async () => {
      running++
      expect(running).toBe(1)
      await sleep(ms)
      log.push(name)
      running--
    }
    await Promise.all([
      queue.run('k', task('a', 20)),
      queue.run('k', task('b', 1)),
      queue.run('k', task('c', 5)),
    ])
    expect(log).toEqual(['a', 'b', 'c'])
  })

  it('keeps going after a task fails', async () => {
    const queue = new KeyedQueue()
    const failed = queue.run('k', async () => {
      throw new Error('boom')
    })
    await expect(failed).rejects.toThrow('boom')
    await expect(queue.run('k', async () => 'next')).resolves.toBe('next')
  })

  it('lets different keys run at the same time', async () => {
    const queue = new KeyedQueue()
    let concurrent = 0
    let peak = 0
    const task = async () => {
      concurrent++
      peak = Math.max(peak, concurrent)
      await sleep(10)
      concurrent--
    }
    await Promise.all([queue.run('a', task), queue.run('b', task)])
    expect(peak).toBe(2)
  })
})
