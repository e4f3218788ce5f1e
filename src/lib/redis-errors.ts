/** ioredis / BullMQ errors that mean "Redis is not reachable right now", not "the request is wrong". */
export function isRedisUnavailableError(error: unknown): boolean {
  if (!error || typeof error !== 'object') return false;
  const { name, code, message } = error as { name?: string; code?: string; message?: string };
  return (
    name === 'MaxRetriesPerRequestError' ||
    name === 'ClusterAllFailedError' ||
    ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOTFOUND', 'EPIPE'].includes(code ?? '') ||
    /Connection is closed|Command timed out|enableOfflineQueue|Stream isn't writeable|connect ECONNREFUSED|Reached the max retries/i.test(
      message ?? '',
    )
  );
}
