// Errors of the prediction path. Each carries the HTTP status it stands for, so the
// API's problem+json handler answers without knowing this module (as src/queue/errors.ts).
import { ServiceError } from '../lib/errors.ts';

/** The request body is malformed: not JSON of the expected shape, not an image, truncated bytes. */
export class InvalidPredictRequestError extends ServiceError {
  readonly statusCode = 400;
  constructor(message: string) {
    super(message);
  }
}

/** Well-formed input that cannot be classified: wrong size, pixel values out of range, too many pixels. */
export class UnprocessableInputError extends ServiceError {
  readonly statusCode = 422;
  constructor(message: string) {
    super(message);
  }
}

/** More instances in one request than PREDICT_MAX_INSTANCES. */
export class TooManyInstancesError extends ServiceError {
  readonly statusCode = 413;
  constructor(received: number | string, max: number) {
    super(`too many instances: ${received} received, at most ${max} per request (PREDICT_MAX_INSTANCES)`);
  }
}

export class UnsupportedPredictMediaTypeError extends ServiceError {
  readonly statusCode = 415;
  constructor(contentType: string | undefined) {
    super(
      `unsupported Content-Type ${JSON.stringify(contentType ?? '')}: send image/png, image/jpeg, ` +
        'multipart/form-data with image files, or application/json',
    );
  }
}

/** No model to predict with; the detail says why (nothing published, no default, default unloadable). */
export class NoModelError extends ServiceError {
  readonly statusCode = 503;
  constructor(detail = 'no model has been published yet: train one with POST /v1/jobs (or `digits train`), then retry') {
    super(detail);
  }
}

/** More images waiting for a forward pass than the bound allows: the caller should retry shortly (503 with Retry-After). */
export class ServingOverloadedError extends Error {
  readonly statusCode = 503;
  constructor(waiting: number, max: number) {
    super(`the server is overloaded: ${waiting} images are already waiting for a forward pass (at most ${max}, 64 × MAX_BATCH); retry shortly`);
    this.name = 'ServingOverloadedError';
  }
}

/** A published version that cannot be loaded (corrupt artifacts, wrong architecture). */
export class ModelLoadError extends ServiceError {
  readonly statusCode = 503;
  constructor(version: string, cause: unknown) {
    super(`model version ${version} could not be loaded: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
}

/** The images of one request declare more pixels than PREDICT_MAX_REQUEST_PIXELS (decoding cost). */
export class PixelBudgetExceededError extends ServiceError {
  readonly statusCode = 413;
  constructor(images: number, total: number, max: number) {
    super(
      `${images === 1 ? 'the image in this request declares' : `the ${images} images in this request declare`} ${total} pixels in total; ` +
        `at most ${max} are decoded per request (PREDICT_MAX_REQUEST_PIXELS)`,
    );
  }
}
