// Configuration comes from the environment only, and is checked once at start-up:
// a bad value stops the process with a message naming the variable, instead of
// surfacing later as a confusing failure deep inside a request or a job.
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { z } from 'zod';
import type { DatasetName } from '../data/types.ts';
import { ENGINE_NAMES } from '../engine/types.ts';
import { IMAGE_PIXELS } from '../model/spec.ts';
import { DEFAULT_MODEL_NAME, MODEL_NAME_RULE, isModelName } from '../registry/model-name.ts';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface Config {
  /** PORT: HTTP port of `digits serve` (default 3000). */
  port: number;
  /** HOST: interface to listen on (default 0.0.0.0). */
  host: string;
  /** REDIS_URL: unset means `digits up` starts a private redis-server, `serve`/`worker` use DEFAULT_REDIS_URL (redisSettings in lib/redis.ts). */
  redisUrl?: string;
  /** MODEL_DIR: the model registry, shared by API and workers (absolute path; default ./models). */
  modelDir: string;
  /** DATA_DIR: job run directories, downloads and the private Redis's AOF (absolute path; default ./data). */
  dataDir: string;
  /** MNIST_DIR: a local directory with the four MNIST IDX files. */
  mnistDir?: string;
  /** FASHION_MNIST_DIR: the same for Fashion-MNIST. */
  fashionMnistDir?: string;
  /** ENGINE: tfjs backend for training (default auto: the fastest one that loads). */
  engine: (typeof ENGINE_NAMES)[number] | 'auto';
  /** LOG_LEVEL: pino level (default info). */
  logLevel: LogLevel;
  /** API_KEYS: comma-separated keys; when any are set, /v1 routes require one. */
  apiKeys: string[];
  /** PREDICT_API_KEYS: comma-separated keys that may only predict and read models (needs API_KEYS set too). */
  predictApiKeys: string[];
  /** BODY_LIMIT: largest accepted request body in bytes; accepts 512kb / 2mb (default 1mb). */
  bodyLimit: number;
  /** CORS_ORIGIN: `*` or comma-separated origins allowed to call the API from browsers; unset disables CORS. */
  corsOrigin?: string[] | '*';
  /** SHUTDOWN_TIMEOUT_MS: how long SIGINT/SIGTERM waits for in-flight work before exiting (default 10000). */
  shutdownTimeoutMs: number;
  /** PREDICT_MAX_INSTANCES: most images in one /v1/predict request (default 64). */
  predictMaxInstances: number;
  /** PREDICT_MAX_PIXELS: largest width × height of an uploaded image, against decompression bombs (default 24000000). */
  predictMaxPixels: number;
  /** PREDICT_RATE_LIMIT: /v1/predict requests per minute per client (API key, else IP); 0 = unlimited (default 0). */
  predictRateLimit: number;
  /** BATCH_WAIT_MS: longest an image waits for others to share its forward pass, 0–2; 0 = until the next event-loop turn (default 0). */
  batchWaitMs: number;
  /** MAX_BATCH: most images per forward pass (default 64). */
  maxBatch: number;
  /** INFERENCE_THREADS: worker threads that run forward passes, 0–8; 0 = on the event loop (default cores − 1, at least 1). */
  inferenceThreads: number;
  /** MODEL_CACHE_SIZE: versions pinned with ?model= kept loaded besides latest, 1–64 (default 3). */
  modelCacheSize: number;
  /** MODEL_RECHECK_MS: how often the API re-reads `latest` in case an announcement was missed (default 30000). */
  modelRecheckMs: number;
  /** DEFAULT_MODEL: the model name a bare /v1/predict (and the legacy `latest`) serves (default mnist). */
  defaultModel: string;
  /** PREDICT_MAX_REQUEST_PIXELS: most width × height decoded for one /v1/predict request, all images together (default 24000000). */
  predictMaxRequestPixels: number;
  /** PREDICT_DECODE_CONCURRENCY: most images decoded by sharp at once, process-wide (default cores − 1, 1–3). */
  predictDecodeConcurrency: number;
  /** REQUEST_TIMEOUT_MS: longest a client may take to send a whole request, headers and body; then 408 (default 30000). */
  requestTimeoutMs: number;
  /** HEADERS_TIMEOUT_MS: longest a client may take to send the request headers; then 408 (default 10000). */
  headersTimeoutMs: number;
  /** KEEP_ALIVE_TIMEOUT_MS: how long an idle keep-alive connection stays open; longer than load balancers' idle timeouts (default 72000, as fastify). */
  keepAliveTimeoutMs: number;
  /** QUEUE_PREFIX: Redis key prefix of the queue, its own keys and the model announcements channel (default digits). */
  queuePrefix: string;
  /** WORKER_LOCK_DURATION_MS: how long a worker's job lock lasts without renewal (default 30000). */
  workerLockDurationMs: number;
  /**
   * WORKER_STALLED_INTERVAL_MS: how often workers look for jobs whose worker died (default 30000).
   * A job whose worker dies is picked up again after roughly lock + 2 × stalled interval.
   */
  workerStalledIntervalMs: number;
  /** WASM_THREADS: threads for the wasm engine's XNNPACK pool and our kernels (default: one per core). */
  wasmThreads: number;
  /** WASM_RELAXED_SIMD: 0 opts out of the relaxed-SIMD training kernels (default on where the runtime has them). */
  wasmRelaxedSimd: boolean;
}

export class ConfigError extends Error {
  readonly variable: string;
  readonly problem: string;
  constructor(variable: string, problem: string) {
    super(`${variable}: ${problem}`);
    this.variable = variable;
    this.problem = problem;
    this.name = 'ConfigError';
  }
}

const show = (value: string) => JSON.stringify(value);

/** Unset and empty both mean "use the default": `PORT= digits serve` should not fail. */
const optionalText = z
  .string()
  .optional()
  .transform((value) => (value?.trim() ? value.trim() : undefined));

function integer(min: number, max: number, fallback: number) {
  return optionalText.transform((value, ctx) => {
    if (value === undefined) return fallback;
    const number = /^\d+$/.test(value) ? Number(value) : NaN;
    if (!Number.isSafeInteger(number) || number < min || number > max) {
      ctx.addIssue({ code: 'custom', message: `expected an integer ${min}–${max}, got ${show(value)}` });
      return z.NEVER;
    }
    return number;
  });
}

function oneOf<const T extends readonly string[]>(choices: T, fallback: T[number]) {
  return optionalText.transform((value, ctx) => {
    if (value === undefined) return fallback;
    const lower = value.toLowerCase();
    if (!(choices as readonly string[]).includes(lower)) {
      ctx.addIssue({ code: 'custom', message: `expected one of ${choices.join(', ')}, got ${show(value)}` });
      return z.NEVER;
    }
    return lower as T[number];
  });
}

/** Paths are made absolute once, so workers and the API agree whatever their cwd. */
const directory = (fallback: string) => optionalText.transform((value) => resolve(value ?? fallback));
const optionalDirectory = optionalText.transform((value) => (value === undefined ? undefined : resolve(value)));

const SIZE_UNITS: Record<string, number> = { '': 1, b: 1, kb: 1024, mb: 1024 ** 2 };
const bodyLimit = optionalText.transform((value, ctx) => {
  if (value === undefined) return 1024 ** 2;
  const match = /^(\d+)\s*(b|kb|mb)?$/i.exec(value);
  const bytes = match ? Number(match[1]) * (SIZE_UNITS[(match[2] ?? '').toLowerCase()] ?? NaN) : NaN;
  if (!Number.isSafeInteger(bytes) || bytes < 1 || bytes > 1024 ** 3) {
    ctx.addIssue({ code: 'custom', message: `expected a size such as 1048576, 512kb or 2mb (at most 1024mb), got ${show(value)}` });
    return z.NEVER;
  }
  return bytes;
});

const redisUrl = optionalText.transform((value, ctx) => {
  if (value === undefined) return undefined;
  let url: URL | undefined;
  try {
    url = new URL(value);
  } catch {
    // reported below
  }
  if (!url || !['redis:', 'rediss:'].includes(url.protocol)) {
    ctx.addIssue({ code: 'custom', message: `expected a redis:// or rediss:// URL, got ${show(value)}` });
    return z.NEVER;
  }
  return value;
});

const list = optionalText.transform((value) =>
  value === undefined ? [] : value.split(',').map((item) => item.trim()).filter(Boolean),
);

const corsOrigin = optionalText.transform((value, ctx) => {
  if (value === undefined) return undefined;
  if (value === '*') return '*' as const;
  const origins = value.split(',').map((item) => item.trim()).filter(Boolean);
  for (const origin of origins) {
    let parsed: URL | undefined;
    try {
      parsed = new URL(origin);
    } catch {
      // reported below
    }
    if (!parsed || parsed.origin !== origin.replace(/\/$/, '')) {
      ctx.addIssue({ code: 'custom', message: `expected * or comma-separated origins like https://example.com, got ${show(origin)}` });
      return z.NEVER;
    }
  }
  return origins.map((origin) => origin.replace(/\/$/, ''));
});

const queuePrefix = optionalText.transform((value, ctx) => {
  if (value === undefined) return 'digits';
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(value)) {
    ctx.addIssue({ code: 'custom', message: `expected 1–64 letters, digits, _ . or -, got ${show(value)}` });
    return z.NEVER;
  }
  return value;
});

/** WASM_THREADS is a tuning knob, not a contract: a value that is not a positive integer means "one per core", as it always has. */
const wasmThreads = optionalText.transform((value) => {
  const number = Number(value);
  return value !== undefined && Number.isInteger(number) && number >= 1 ? number : Math.max(1, availableParallelism());
});

/** The engine's variables: the engine reads these when its caller passes no settings (library use, tests, benches). */
const ENGINE_ENV_SCHEMA = z.object({
  ENGINE: oneOf(['auto', ...ENGINE_NAMES] as const, 'auto'),
  WASM_THREADS: wasmThreads,
  WASM_RELAXED_SIMD: optionalText.transform((value) => value !== '0'),
});

/** Environment variable name → how to read it; keys are the variable names so errors can name them. */
const ENV_SCHEMA = ENGINE_ENV_SCHEMA.extend({
  PORT: integer(1, 65535, 3000),
  HOST: optionalText.transform((value) => value ?? '0.0.0.0'),
  REDIS_URL: redisUrl,
  MODEL_DIR: directory('models'),
  DATA_DIR: directory('data'),
  MNIST_DIR: optionalDirectory,
  FASHION_MNIST_DIR: optionalDirectory,
  LOG_LEVEL: oneOf(LOG_LEVELS, 'info'),
  API_KEYS: list,
  BODY_LIMIT: bodyLimit,
  CORS_ORIGIN: corsOrigin,
  SHUTDOWN_TIMEOUT_MS: integer(0, 600_000, 10_000),
  PREDICT_MAX_INSTANCES: integer(1, 4096, 64),
  PREDICT_MAX_PIXELS: integer(IMAGE_PIXELS, 268_402_689, 24_000_000),
  PREDICT_RATE_LIMIT: integer(0, 10_000_000, 0),
  BATCH_WAIT_MS: integer(0, 2, 0),
  MAX_BATCH: integer(1, 1024, 64),
  INFERENCE_THREADS: integer(0, 8, Math.max(1, availableParallelism() - 1)),
  MODEL_CACHE_SIZE: integer(1, 64, 3),
  MODEL_RECHECK_MS: integer(1000, 3_600_000, 30_000),
  DEFAULT_MODEL: optionalText.transform((value, ctx) => {
    if (value === undefined) return DEFAULT_MODEL_NAME;
    if (!isModelName(value)) {
      ctx.addIssue({ code: 'custom', message: `expected ${MODEL_NAME_RULE}, got ${show(value)}` });
      return z.NEVER;
    }
    return value;
  }),
  PREDICT_API_KEYS: list,
  PREDICT_MAX_REQUEST_PIXELS: integer(IMAGE_PIXELS, 1_073_741_824, 24_000_000),
  PREDICT_DECODE_CONCURRENCY: integer(1, 64, Math.max(1, Math.min(3, availableParallelism() - 1))),
  REQUEST_TIMEOUT_MS: integer(100, 600_000, 30_000),
  HEADERS_TIMEOUT_MS: integer(100, 600_000, 10_000),
  KEEP_ALIVE_TIMEOUT_MS: integer(100, 600_000, 72_000),
  QUEUE_PREFIX: queuePrefix,
  WORKER_LOCK_DURATION_MS: integer(100, 3_600_000, 30_000),
  WORKER_STALLED_INTERVAL_MS: integer(100, 3_600_000, 30_000),
});

function parse<T extends z.ZodTypeAny>(schema: T, env: Record<string, string | undefined>): z.output<T> {
  const parsed = schema.safeParse(env);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new ConfigError(String(issue.path[0] ?? 'environment'), issue.message);
  }
  return parsed.data;
}

/** Reads and checks the configuration; throws ConfigError naming the first bad variable. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const v = parse(ENV_SCHEMA, env);
  if (v.PREDICT_API_KEYS.length > 0 && v.API_KEYS.length === 0) {
    // Otherwise the management API would be closed to everyone, or (worse, if we guessed) open to everyone.
    throw new ConfigError('PREDICT_API_KEYS', 'set API_KEYS too: predict-only keys need full keys beside them to manage jobs and models');
  }
  if (v.HEADERS_TIMEOUT_MS > v.REQUEST_TIMEOUT_MS) {
    throw new ConfigError('HEADERS_TIMEOUT_MS', `must not exceed REQUEST_TIMEOUT_MS (${v.REQUEST_TIMEOUT_MS}), which covers the headers too`);
  }
  return {
    port: v.PORT,
    host: v.HOST,
    modelDir: v.MODEL_DIR,
    dataDir: v.DATA_DIR,
    engine: v.ENGINE,
    logLevel: v.LOG_LEVEL,
    apiKeys: v.API_KEYS,
    bodyLimit: v.BODY_LIMIT,
    shutdownTimeoutMs: v.SHUTDOWN_TIMEOUT_MS,
    predictMaxInstances: v.PREDICT_MAX_INSTANCES,
    predictMaxPixels: v.PREDICT_MAX_PIXELS,
    predictRateLimit: v.PREDICT_RATE_LIMIT,
    batchWaitMs: v.BATCH_WAIT_MS,
    maxBatch: v.MAX_BATCH,
    inferenceThreads: v.INFERENCE_THREADS,
    modelCacheSize: v.MODEL_CACHE_SIZE,
    modelRecheckMs: v.MODEL_RECHECK_MS,
    defaultModel: v.DEFAULT_MODEL,
    predictApiKeys: v.PREDICT_API_KEYS,
    predictMaxRequestPixels: v.PREDICT_MAX_REQUEST_PIXELS,
    predictDecodeConcurrency: v.PREDICT_DECODE_CONCURRENCY,
    requestTimeoutMs: v.REQUEST_TIMEOUT_MS,
    headersTimeoutMs: v.HEADERS_TIMEOUT_MS,
    keepAliveTimeoutMs: v.KEEP_ALIVE_TIMEOUT_MS,
    queuePrefix: v.QUEUE_PREFIX,
    workerLockDurationMs: v.WORKER_LOCK_DURATION_MS,
    workerStalledIntervalMs: v.WORKER_STALLED_INTERVAL_MS,
    wasmThreads: v.WASM_THREADS,
    wasmRelaxedSimd: v.WASM_RELAXED_SIMD,
    ...(v.REDIS_URL ? { redisUrl: v.REDIS_URL } : {}),
    ...(v.MNIST_DIR ? { mnistDir: v.MNIST_DIR } : {}),
    ...(v.FASHION_MNIST_DIR ? { fashionMnistDir: v.FASHION_MNIST_DIR } : {}),
    ...(v.CORS_ORIGIN ? { corsOrigin: v.CORS_ORIGIN } : {}),
  };
}

export type EngineSettings = Pick<Config, 'engine' | 'wasmThreads' | 'wasmRelaxedSimd'>;

/** Only the engine's variables (ENGINE, WASM_THREADS, WASM_RELAXED_SIMD), for code that starts an engine without a Config. */
export function loadEngineSettings(env: Record<string, string | undefined> = process.env): EngineSettings {
  const v = parse(ENGINE_ENV_SCHEMA, env);
  return { engine: v.ENGINE, wasmThreads: v.WASM_THREADS, wasmRelaxedSimd: v.WASM_RELAXED_SIMD };
}

export type DataSettings = Pick<Config, 'dataDir' | 'mnistDir' | 'fashionMnistDir'>;

/** Only the data variables (DATA_DIR, MNIST_DIR, FASHION_MNIST_DIR), for loadDataset called without a directory. */
export function loadDataSettings(env: Record<string, string | undefined> = process.env): DataSettings {
  const v = parse(z.object({ DATA_DIR: directory('data'), MNIST_DIR: optionalDirectory, FASHION_MNIST_DIR: optionalDirectory }), env);
  return {
    dataDir: v.DATA_DIR,
    ...(v.MNIST_DIR ? { mnistDir: v.MNIST_DIR } : {}),
    ...(v.FASHION_MNIST_DIR ? { fashionMnistDir: v.FASHION_MNIST_DIR } : {}),
  };
}

/** What the client commands (`digits predict`) read: the service's PORT for the default URL, DIGITS_API_KEY, and DEBUG for stack traces. */
export interface ClientSettings {
  port: number;
  apiKey?: string;
  debug: boolean;
}

export function loadClientSettings(env: Record<string, string | undefined> = process.env): ClientSettings {
  const v = parse(z.object({ PORT: integer(1, 65535, 3000), DIGITS_API_KEY: optionalText, DEBUG: optionalText }), env);
  return { port: v.PORT, ...(v.DIGITS_API_KEY ? { apiKey: v.DIGITS_API_KEY } : {}), debug: v.DEBUG !== undefined };
}

/** The local data directory configured for a data set (MNIST_DIR or FASHION_MNIST_DIR), if any. */
export function datasetDir(config: Pick<Config, 'mnistDir' | 'fashionMnistDir'>, dataset: DatasetName): string | undefined {
  return dataset === 'mnist' ? config.mnistDir : config.fashionMnistDir;
}
