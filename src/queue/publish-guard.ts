// Exactly-once publish and cancels that hold, decided in Redis where the job's
// lock and its cancel mark live. Two atomic scripts share one hash of publish
// records (job id → JSON PublishRecord):
//  - the worker's claim, after training and before touching the registry: refused
//    when the job is cancelled, refused when this worker no longer holds the job's
//    BullMQ lock (its token no longer in <prefix>:<queue>:<job>:lock: the lock
//    expired during a Redis outage or a stall and the job may be running elsewhere);
//    otherwise it records { state: "publishing" } (or returns the record an earlier
//    attempt left, so a retry completes the same publish);
//  - the API's cancel: refused (409) once a record exists, otherwise it sets the
//    cancel mark. Whichever runs first wins; there is no window between them.
// The registry then makes the publish itself idempotent per job id (a retry finds
// the version the job already made), which covers a crash between claim and record.
import type { Redis } from 'ioredis';
import { QUEUE_NAME, serviceKeys } from './connection.ts';

/** What a job's publish left in Redis. */
export interface PublishRecord {
  state: 'publishing' | 'published';
  /** Set once published. */
  version?: string;
  model?: string;
  promoted?: boolean;
  promotion?: string;
}

export type PublishClaim =
  | { outcome: 'claimed'; record: PublishRecord }
  | { outcome: 'cancelled' }
  | { outcome: 'lock-lost' };

// KEYS: cancelled hash, publish records hash, job lock. ARGV: job id, lock token ('' = no lock check), claim JSON.
const CLAIM_SCRIPT = `
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return 'cancelled' end
if ARGV[2] ~= '' and redis.call('GET', KEYS[3]) ~= ARGV[2] then return 'lock-lost' end
local record = redis.call('HGET', KEYS[2], ARGV[1])
if record then return record end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
return ARGV[3]`;

// KEYS: cancelled hash, publish records hash. ARGV: job id, cancel record JSON.
const CANCEL_SCRIPT = `
local record = redis.call('HGET', KEYS[2], ARGV[1])
if record then return record end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return false`;

export class PublishGuard {
  private readonly keys: ReturnType<typeof serviceKeys>;
  private readonly redis: Redis;
  private readonly prefix: string;

  constructor(redis: Redis, prefix: string) {
    this.redis = redis;
    this.prefix = prefix;
    this.keys = serviceKeys(prefix);
  }

  private lockKey(jobId: string): string {
    return `${this.prefix}:${QUEUE_NAME}:${jobId}:lock`;
  }

  /** The worker's claim on publishing `jobId`; `token` is the BullMQ lock token it holds (undefined: no lock check). */
  async claim(jobId: string, token: string | undefined): Promise<PublishClaim> {
    const claim: PublishRecord = { state: 'publishing' };
    const answer = (await this.redis.eval(
      CLAIM_SCRIPT,
      3,
      this.keys.cancelled,
      this.keys.published,
      this.lockKey(jobId),
      jobId,
      token ?? '',
      JSON.stringify(claim),
    )) as string;
    if (answer === 'cancelled' || answer === 'lock-lost') return { outcome: answer };
    return { outcome: 'claimed', record: JSON.parse(answer) as PublishRecord };
  }

  async recordPublished(jobId: string, record: Omit<PublishRecord, 'state'>): Promise<void> {
    await this.redis.hset(this.keys.published, jobId, JSON.stringify({ state: 'published', ...record } satisfies PublishRecord));
  }

  async record(jobId: string): Promise<PublishRecord | undefined> {
    const json = await this.redis.hget(this.keys.published, jobId);
    return json ? (JSON.parse(json) as PublishRecord) : undefined;
  }

  /** Sets the cancel mark unless the job has claimed its publish; then returns that claim instead. */
  async cancel(jobId: string, cancelRecordJson: string): Promise<PublishRecord | undefined> {
    const answer = (await this.redis.eval(CANCEL_SCRIPT, 2, this.keys.cancelled, this.keys.published, jobId, cancelRecordJson)) as string | null;
    return answer ? (JSON.parse(answer) as PublishRecord) : undefined;
  }
}
