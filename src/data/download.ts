// Downloads one file from a list of mirrors, verifies its md5 before writing it
// (atomically), retries transient failures with exponential backoff, and only ever
// leaves either the complete, verified file or nothing.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { writeFileAtomic } from '../lib/atomic-write.ts';

/** The data could not be fetched from any mirror (network down, server errors, 404s). */
export class DatasetUnavailableError extends Error {
  override name = 'DatasetUnavailableError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** A mirror served bytes whose md5 is not the official one. */
export class ChecksumMismatchError extends Error {
  override name = 'ChecksumMismatchError';
  readonly url: string;
  readonly expected: string;
  readonly actual: string;
  constructor(url: string, expected: string, actual: string) {
    super(`${url}: md5 ${actual} does not match the official checksum ${expected}`);
    this.url = url;
    this.expected = expected;
    this.actual = actual;
  }
}

/** An HTTP answer other than 200; 4xx other than 408/429 won't get better by retrying. */
class HttpStatusError extends Error {
  readonly url: string;
  readonly status: number;
  constructor(url: string, status: number) {
    super(`${url}: HTTP ${status}`);
    this.url = url;
    this.status = status;
  }
  get permanent(): boolean {
    return this.status >= 400 && this.status < 500 && this.status !== 408 && this.status !== 429;
  }
}

export interface DownloadFileOptions {
  /** File name appended to each mirror base URL. */
  name: string;
  /** Base URLs, tried in order each round. */
  mirrors: readonly string[];
  md5: string;
  dest: string;
  /** Rounds over the mirrors before giving up. */
  attempts: number;
  /** Pause before round 2; doubled for each later round. */
  retryDelayMs: number;
  /** Appended to the DatasetUnavailableError message, e.g. "pass --data-dir or set MNIST_DIR". */
  hint: string;
  signal?: AbortSignal;
}

/** Per-request limit, generous enough for 26 MB over a slow link. */
const REQUEST_TIMEOUT_MS = 5 * 60_000;

export async function downloadFile(options: DownloadFileOptions): Promise<void> {
  const { name, mirrors, attempts, signal } = options;
  const deadMirrors = new Set<string>(); // mirrors that answered 404 or served the wrong bytes
  let lastError: unknown;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    if (attempt > 1) await sleep(options.retryDelayMs * 2 ** (attempt - 2), undefined, { signal });
    for (const mirror of mirrors) {
      if (deadMirrors.has(mirror)) continue;
      const url = new URL(name, mirror).href;
      try {
        await fetchVerified(url, options.dest, options.md5, signal);
        return;
      } catch (error) {
        if (signal?.aborted) throw signal.reason;
        lastError = error;
        if (error instanceof ChecksumMismatchError || (error instanceof HttpStatusError && error.permanent)) {
          deadMirrors.add(mirror);
        }
      }
    }
    if (deadMirrors.size === mirrors.length) break;
  }
  // Wrong bytes everywhere is a different problem from being offline: say so.
  if (lastError instanceof ChecksumMismatchError && deadMirrors.size === mirrors.length) throw lastError;
  const reason = lastError instanceof Error ? lastError.message : String(lastError);
  throw new DatasetUnavailableError(
    `could not download ${name} from ${mirrors.join(', ')} (offline?); ${options.hint} (last error: ${reason})`,
    { cause: lastError },
  );
}

async function fetchVerified(url: string, dest: string, expectedMd5: string, signal?: AbortSignal): Promise<void> {
  const timeout = AbortSignal.timeout(REQUEST_TIMEOUT_MS);
  const response = await fetch(url, { signal: signal ? AbortSignal.any([signal, timeout]) : timeout });
  if (!response.ok) {
    await response.body?.cancel();
    throw new HttpStatusError(url, response.status);
  }
  // The largest file is 26 MB: holding it in memory keeps this simple, and
  // nothing touches the disk until the whole body is in and verified.
  const body = new Uint8Array(await response.arrayBuffer());
  const actual = createHash('md5').update(body).digest('hex');
  if (actual !== expectedMd5) throw new ChecksumMismatchError(url, expectedMd5, actual);
  await writeFileAtomic(dest, body);
}

/** md5 of a file on disk (hex), or undefined when it does not exist. */
export async function md5OfFile(file: string): Promise<string | undefined> {
  const hash = createHash('md5');
  try {
    for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  return hash.digest('hex');
}
