// Errors of the jobs service: ServiceErrors (src/lib/errors.ts) with the HTTP status
// each stands for, so the API answers them without knowing this module.
import { ServiceError } from '../lib/errors.ts';

export class JobNotFoundError extends ServiceError {
  readonly statusCode = 404;
  readonly jobId: string;
  constructor(jobId: string) {
    super(`job ${JSON.stringify(jobId)} does not exist`);
    this.jobId = jobId;
  }
}

/** The job is in a state that does not allow the operation (e.g. cancelling a completed job). */
export class JobStateConflictError extends ServiceError {
  readonly statusCode = 409;
  readonly jobId: string;
  readonly state: string;
  constructor(jobId: string, state: string, action: string) {
    super(`job ${jobId} is ${state}; only queued or active jobs can be ${action}`);
    this.jobId = jobId;
    this.state = state;
  }
}

/** The same Idempotency-Key was sent before with a different body. */
export class IdempotencyKeyReusedError extends ServiceError {
  readonly statusCode = 422;
  readonly jobId: string;
  constructor(jobId: string) {
    super(`Idempotency-Key was already used for job ${jobId} with a different request body; use a new key for a new job`);
    this.jobId = jobId;
  }
}

/** A request with the same Idempotency-Key is still being created. */
export class IdempotencyKeyInFlightError extends ServiceError {
  readonly statusCode = 409;
  constructor() {
    super('a request with this Idempotency-Key is still being processed; retry in a moment');
  }
}

export class InvalidRequestError extends ServiceError {
  readonly statusCode = 400;
  constructor(message: string) {
    super(message);
  }
}

/** Redis cannot be reached (or did not answer in time): 503, try again later. */
export class QueueUnavailableError extends ServiceError {
  readonly statusCode = 503;
  constructor(cause?: unknown) {
    super(`the job queue (Redis) is unavailable: ${cause instanceof Error ? cause.message : String(cause ?? 'no answer')}`, { cause });
  }
}

/** Cancelling a job that has already published (or is publishing) its model: too late, nothing to stop. */
export class JobAlreadyPublishedError extends ServiceError {
  readonly statusCode = 409;
  readonly jobId: string;
  readonly version: string | null;
  constructor(jobId: string, version: string | null) {
    super(
      version
        ? `job ${jobId} is completed: it published model version ${version}, so it can no longer be cancelled (delete the version or promote another instead)`
        : `job ${jobId} is publishing its model version; it can no longer be cancelled`,
    );
    this.jobId = jobId;
    this.version = version;
  }
}
