// Errors of the jobs service. Each carries the HTTP status it stands for, so the
// API's problem+json handler can answer without knowing this module.
export class JobNotFoundError extends Error {
  readonly statusCode = 404;
  constructor(readonly jobId: string) {
    super(`job ${JSON.stringify(jobId)} does not exist`);
    this.name = 'JobNotFoundError';
  }
}

/** The job is in a state that does not allow the operation (e.g. cancelling a completed job). */
export class JobStateConflictError extends Error {
  readonly statusCode = 409;
  constructor(
    readonly jobId: string,
    readonly state: string,
    action: string,
  ) {
    super(`job ${jobId} is ${state}; only queued or active jobs can be ${action}`);
    this.name = 'JobStateConflictError';
  }
}

/** The same Idempotency-Key was sent before with a different body. */
export class IdempotencyKeyReusedError extends Error {
  readonly statusCode = 422;
  constructor(readonly jobId: string) {
    super(`Idempotency-Key was already used for job ${jobId} with a different request body; use a new key for a new job`);
    this.name = 'IdempotencyKeyReusedError';
  }
}

/** A request with the same Idempotency-Key is still being created. */
export class IdempotencyKeyInFlightError extends Error {
  readonly statusCode = 409;
  constructor() {
    super('a request with this Idempotency-Key is still being processed; retry in a moment');
    this.name = 'IdempotencyKeyInFlightError';
  }
}

export class InvalidRequestError extends Error {
  readonly statusCode = 400;
  constructor(message: string) {
    super(message);
    this.name = 'InvalidRequestError';
  }
}

/** Redis cannot be reached (or did not answer in time): 503, try again later. */
export class QueueUnavailableError extends Error {
  readonly statusCode = 503;
  constructor(cause?: unknown) {
    super(`the job queue (Redis) is unavailable: ${cause instanceof Error ? cause.message : String(cause ?? 'no answer')}`, { cause });
    this.name = 'QueueUnavailableError';
  }
}

/** Cancelling a job that has already published (or is publishing) its model: too late, nothing to stop. */
export class JobAlreadyPublishedError extends Error {
  readonly statusCode = 409;
  constructor(
    readonly jobId: string,
    readonly version: string | null,
  ) {
    super(
      version
        ? `job ${jobId} is completed: it published model version ${version}, so it can no longer be cancelled (delete the version or promote another instead)`
        : `job ${jobId} is publishing its model version; it can no longer be cancelled`,
    );
    this.name = 'JobAlreadyPublishedError';
  }
}
