// Idempotency-Key for POST /v1/jobs: the first request with a key creates the job;
// a repeat with the same body (in any key order) gets that job back, a repeat with
// another body is refused (422), and one that races the first waits its turn (409).
import { createHash, randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { serviceKeys } from './connection.ts';
import { IdempotencyKeyInFlightError, IdempotencyKeyReusedError } from './errors.ts';
import type { JobRequest, JobView } from './schema.ts';

/** How long an Idempotency-Key is remembered. */
export const IDEMPOTENCY_TTL_SECONDS = 24 * 60 * 60;

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** JSON with sorted keys, so equal requests have equal fingerprints whatever their key order. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value).filter(([, v]) => v !== undefined);
    entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** Creates the job for `idempotencyKey` once; later calls with the same key and request get it back. */
export async function createOnce(
  redis: Redis,
  keys: ReturnType<typeof serviceKeys>,
  idempotencyKey: string,
  request: JobRequest,
  jobs: { add(jobId: string): Promise<JobView>; find(jobId: string): Promise<JobView | undefined> },
): Promise<{ job: JobView; created: boolean }> {
  const key = keys.idempotency(sha256(idempotencyKey));
  const fingerprint = sha256(canonicalJson(request));
  const jobId = randomUUID();
  const claimed = await redis.set(key, JSON.stringify({ jobId, fingerprint }), 'EX', IDEMPOTENCY_TTL_SECONDS, 'NX');
  if (claimed === 'OK') {
    try {
      return { job: await jobs.add(jobId), created: true };
    } catch (error) {
      // Free the key so a retry can create the job; if Redis is away the key expires by itself.
      await redis.del(key).catch(() => {});
      throw error;
    }
  }
  const stored = await redis.get(key);
  if (stored === null) throw new IdempotencyKeyInFlightError();
  const earlier = JSON.parse(stored) as { jobId: string; fingerprint: string };
  if (earlier.fingerprint !== fingerprint) throw new IdempotencyKeyReusedError(earlier.jobId);
  const job = await jobs.find(earlier.jobId);
  if (!job) throw new IdempotencyKeyInFlightError();
  return { job, created: false };
}
