// Queue-specific environment, checked at start-up like src/lib/config.ts
// (which holds everything the API and worker share):
//   QUEUE_PREFIX                Redis key prefix of the queue (default "digits")
//   WORKER_LOCK_DURATION_MS     how long a worker's job lock lasts without renewal (default 30000)
//   WORKER_STALLED_INTERVAL_MS  how often workers look for jobs whose worker died (default 30000)
// A job whose worker dies is picked up again after roughly lock + 2 × stalled interval.
import { z } from 'zod';
import { ConfigError } from '../lib/config.ts';

export interface WorkerTimings {
  lockDurationMs: number;
  stalledIntervalMs: number;
}

export interface QueueEnv extends WorkerTimings {
  prefix: string;
}

const milliseconds = (fallback: number) =>
  z
    .string()
    .optional()
    .transform((value, ctx) => {
      if (!value?.trim()) return fallback;
      const number = /^\d+$/.test(value.trim()) ? Number(value) : NaN;
      if (!Number.isSafeInteger(number) || number < 100 || number > 3_600_000) {
        ctx.addIssue({ code: 'custom', message: `expected milliseconds 100–3600000, got ${JSON.stringify(value)}` });
        return z.NEVER;
      }
      return number;
    });

const QUEUE_ENV = z.object({
  QUEUE_PREFIX: z
    .string()
    .optional()
    .transform((value, ctx) => {
      if (!value?.trim()) return 'digits';
      if (!/^[A-Za-z0-9_.-]{1,64}$/.test(value.trim())) {
        ctx.addIssue({ code: 'custom', message: `expected 1–64 letters, digits, _ . or -, got ${JSON.stringify(value)}` });
        return z.NEVER;
      }
      return value.trim();
    }),
  WORKER_LOCK_DURATION_MS: milliseconds(30_000),
  WORKER_STALLED_INTERVAL_MS: milliseconds(30_000),
});

export function loadQueueEnv(env: Record<string, string | undefined> = process.env): QueueEnv {
  const parsed = QUEUE_ENV.safeParse(env);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new ConfigError(String(issue.path[0] ?? 'environment'), issue.message);
  }
  return {
    prefix: parsed.data.QUEUE_PREFIX,
    lockDurationMs: parsed.data.WORKER_LOCK_DURATION_MS,
    stalledIntervalMs: parsed.data.WORKER_STALLED_INTERVAL_MS,
  };
}
