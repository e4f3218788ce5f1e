// `digits health [api|worker]`: the containers' health check (Docker HEALTHCHECK,
// compose). worker: Redis answers and this host's worker heartbeat
// (src/queue/heartbeat.ts) is fresh. api: GET /healthz on this host's PORT answers 200.
// Without a target (one image runs either), the API if something listens on PORT,
// else the worker. Exit 0 when healthy, else 1 saying what is not.
import { connect } from 'node:net';
import { hostname } from 'node:os';
import { loadConfig } from '../../lib/config.ts';
import { connectRedis, redisSettings, type RedisSettings } from '../../lib/redis.ts';
import { HEARTBEAT_TTL_MS, readHeartbeat } from '../../queue/heartbeat.ts';
import { parse, UsageError } from '../args.ts';

export const HELP = `Usage: digits health [api|worker]

Exit 0 when this host's service is healthy, 1 with the reason otherwise.
  worker  Redis (REDIS_URL) answers and the worker's heartbeat (written every
          ${HEARTBEAT_TTL_MS / 3000} s, expiring after ${HEARTBEAT_TTL_MS / 1000} s; QUEUE_PREFIX as \`digits worker\`) is there
  api     GET http://127.0.0.1:$PORT/healthz answers 200
  (none)  api if something listens on PORT, else worker
`;

const TARGETS = ['api', 'worker'] as const;
const TIMEOUT_MS = 3000;

export class UnhealthyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UnhealthyError';
  }
}

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { help: { type: 'boolean', short: 'h' } }, true);
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const [target, ...rest] = positionals;
  if (rest.length > 0 || (target !== undefined && !(TARGETS as readonly string[]).includes(target))) {
    throw new UsageError(`give one of ${TARGETS.join(', ')} or nothing, got ${JSON.stringify(positionals.join(' '))}`);
  }
  const config = loadConfig();
  const apiHere = target === 'api' || (target === undefined && (await listening(config.port)));
  return apiHere ? checkApi(config.port) : checkWorker(redisSettings(config));
}

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.setTimeout(TIMEOUT_MS, () => socket.destroy());
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
    socket.once('close', () => resolve(false));
  });
}

async function checkApi(port: number): Promise<number> {
  const url = `http://127.0.0.1:${port}/healthz`;
  const response = await fetch(url, { signal: AbortSignal.timeout(TIMEOUT_MS) }).catch((error: Error & { cause?: Error }) => {
    throw new UnhealthyError(`${url} does not answer: ${error.cause?.message ?? error.message}`);
  });
  await response.body?.cancel();
  if (!response.ok) throw new UnhealthyError(`${url} answered ${response.status}`);
  process.stdout.write(`API on port ${port} alive\n`);
  return 0;
}

async function checkWorker({ redisUrl: url, prefix }: RedisSettings): Promise<number> {
  // One try, bounded (the fail-fast role's 2 s timeouts): a stop signal that is already aborted
  // means no reconnect, so the check answers within the checker's timeout.
  const redis = connectRedis(url, 'api', { lazy: true, stop: AbortSignal.abort() });
  let socketError: Error | undefined; // ioredis rejects with "Connection is closed"; this says why
  redis.on('error', (error: Error) => (socketError ??= error));
  try {
    await redis.connect().catch((error: Error) => {
      throw new UnhealthyError(`Redis at ${new URL(url).host} does not answer: ${(socketError ?? error).message}`);
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
