// Every Redis round trip of the API is bounded: an operation that does not finish
// within the deadline, or fails because Redis is unreachable, becomes
// QueueUnavailableError (503) instead of a hang or a 500.
import type { Redis } from 'ioredis';
import { isRedisUnavailableError } from '../lib/redis.ts';
import { QueueUnavailableError } from './errors.ts';

export async function withDeadline<T>(redis: Redis, timeoutMs: number, operation: () => Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new QueueUnavailableError(`no answer within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    return await Promise.race([operation(), deadline]);
  } catch (error) {
    // Not ready and not one of our typed errors: whatever failed, it failed because Redis is away.
    if (isRedisUnavailableError(error) || (redis.status !== 'ready' && !('statusCode' in (error as object)))) {
      throw new QueueUnavailableError(error);
    }
    throw error;
  } finally {
    clearTimeout(timer);
  }
}
