// `digits health`: the worker's health check (Docker HEALTHCHECK, compose). Exit 0
// when Redis answers and this host's worker heartbeat (src/queue/heartbeat.ts) is
// fresh; exit 1 saying which is not. The API has GET /healthz instead.
import { hostname } from 'node:os';
import { Redis } from 'ioredis';
import { DEFAULT_REDIS_URL, loadConfig } from '../../lib/config.ts';
import { HEARTBEAT_TTL_MS, readHeartbeat } from '../../queue/heartbeat.ts';
import { loadQueueEnv } from '../../queue/settings.ts';
import { helpRequested } from '../args.ts';

export const HELP = `Usage: digits health

Checks this host's training worker: exit 0 when Redis (REDIS_URL) answers and the
worker's heartbeat (written every ${HEARTBEAT_TTL_MS / 3000} s, expiring after ${HEARTBEAT_TTL_MS / 1000} s) is there; exit 1
with the reason otherwise. Uses REDIS_URL and QUEUE_PREFIX as \`digits worker\` does.
For the API, GET /healthz.
`;

export class UnhealthyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UnhealthyError';
  }
}

export async function run(argv: string[]): Promise<number> {
  if (helpRequested(argv, HELP)) return 0;
  const url = loadConfig().redisUrl ?? DEFAULT_REDIS_URL;
  const { prefix } = loadQueueEnv();
  // One try, bounded: a health check must answer within the checker's timeout, not reconnect.
  const redis = new Redis(url, { lazyConnect: true, connectTimeout: 2000, commandTimeout: 2000, maxRetriesPerRequest: 0, retryStrategy: () => null });
  redis.on('error', () => {});
  try {
    await redis.connect().catch((error: Error) => {
      throw new UnhealthyError(`Redis at ${new URL(url).host} does not answer: ${error.message}`);
    });
    const heartbeat = await readHeartbeat(redis, prefix);
    if (!heartbeat) throw new UnhealthyError(`no worker heartbeat from ${hostname()} in the last ${HEARTBEAT_TTL_MS / 1000} s (queue prefix "${prefix}")`);
    const age = Math.max(0, Math.round((Date.now() - heartbeat.at) / 1000));
    process.stdout.write(`worker on ${hostname()} alive (pid ${heartbeat.pid}, heartbeat ${age} s ago)\n`);
    return 0;
  } finally {
    redis.disconnect();
  }
}
