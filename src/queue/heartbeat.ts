// A worker's sign of life for health checks (`digits health`, the compose and Docker
// HEALTHCHECKs): every HEARTBEAT_INTERVAL_MS the worker process writes a key that
// expires after HEARTBEAT_TTL_MS. Written from the worker's event loop over its own
// Redis connection, so a fresh key says both are alive; training runs in a thread
// and does not delay it. One key per host (a container's hostname is its id).
import { hostname } from 'node:os';
import type { Redis } from 'ioredis';
import { serviceKeys } from './connection.ts';

export const HEARTBEAT_INTERVAL_MS = 10_000;
export const HEARTBEAT_TTL_MS = 3 * HEARTBEAT_INTERVAL_MS;

export interface WorkerHeartbeat {
  pid: number;
  /** When it was written (ms since the epoch). */
  at: number;
}

/** Writes the heartbeat now and every intervalMs until stopped; a failed write (Redis down) just lets it expire. */
export function startHeartbeat(redis: Redis, prefix: string, options: { intervalMs?: number; host?: string } = {}): { stop(): Promise<void> } {
  const intervalMs = options.intervalMs ?? HEARTBEAT_INTERVAL_MS;
  const key = serviceKeys(prefix).workerHeartbeat(options.host ?? hostname());
  const beat = () => {
    const value: WorkerHeartbeat = { pid: process.pid, at: Date.now() };
    return redis.set(key, JSON.stringify(value), 'PX', 3 * intervalMs).then(
      () => {},
      () => {},
    );
  };
  void beat();
  const timer = setInterval(() => void beat(), intervalMs);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      // Gone at once rather than at expiry, if Redis is still there.
      if (redis.status === 'ready') await redis.del(key).catch(() => {});
    },
  };
}

/** This host's worker heartbeat, or undefined when there is none (no worker, or it stopped beating). */
export async function readHeartbeat(redis: Redis, prefix: string, host = hostname()): Promise<WorkerHeartbeat | undefined> {
  const text = await redis.get(serviceKeys(prefix).workerHeartbeat(host));
  return text ? (JSON.parse(text) as WorkerHeartbeat) : undefined;
}
