// Every error leaves the API as RFC 9457 problem+json:
//   { type, title, status, detail, instance, requestId, errors? }
// How an error maps to a status, first match wins:
//   - zod validation failures (route schemas): body → 422, URL/query/headers → 400, with `errors`
//   - HttpProblem: as it says
//   - registry errors: InvalidVersionError 400, ModelNotFoundError 404, InvalidModelError 422
//   - Redis/BullMQ connection trouble → 503 with Retry-After
//   - any error with a 4xx/5xx `statusCode` (fastify's own errors, and typed domain
//     errors such as the queue's JobNotFoundError, which declare their status)
//   - anything else is a bug: 500, logged with its stack, no internals in the response.
import { isRedisUnavailableError } from '../../lib/redis-errors.ts';
import { STATUS_CODES } from 'node:http';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { CorruptArtifactError, InvalidModelError, InvalidVersionError, ModelNotFoundError } from '../../registry/errors.ts';

export const PROBLEM_CONTENT_TYPE = 'application/problem+json; charset=utf-8';
const TYPE_PREFIX = 'urn:digits:problem:';
/** Seconds a client should wait before retrying a 503. */
const RETRY_AFTER_SECONDS = 5;

export interface FieldError {
  /** Dotted path inside the request part, e.g. "epochs" or "recipe.limit"; "" is the part itself. */
  path: string;
  message: string;
}

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  instance: string;
  requestId: string;
  errors?: FieldError[];
}

/** Throw from a route to answer with a specific problem. `slug` names the problem type. */
export class HttpProblem extends Error {
  constructor(
    readonly status: number,
    readonly slug: string,
    readonly title: string,
    readonly detail: string,
    readonly errors?: FieldError[],
    readonly headers: Record<string, string> = {},
  ) {
    super(detail);
    this.name = 'HttpProblem';
  }
}


/** "JobNotFoundError" → ["job-not-found", "Job not found"]: typed errors name their problem type. */
function typeFromErrorName(name: string): [slug: string, title: string] {
  const words = name.replace(/Error$/, '').split(/(?=[A-Z])/).map((word) => word.toLowerCase());
  const title = words.join(' ');
  return [words.join('-'), title.charAt(0).toUpperCase() + title.slice(1)];
}

function zodErrors(error: z.ZodError): FieldError[] {
  return error.issues.flatMap((issue) => {
    const path = issue.path.map(String).join('.');
    if (issue.code === 'unrecognized_keys') {
      return issue.keys.map((key) => ({ path: path ? `${path}.${key}` : key, message: `unknown field ${JSON.stringify(key)}` }));
    }
    return [{ path, message: issue.message }];
  });
}

const PART_NAMES: Record<string, string> = {
  body: 'request body',
  params: 'URL path',
  querystring: 'query string',
  headers: 'request headers',
};

function validationProblem(error: z.ZodError, part: string): HttpProblem {
  const errors = zodErrors(error);
  const where = PART_NAMES[part] ?? part;
  const summary = errors.map((e) => (e.path ? `${e.path}: ${e.message}` : e.message)).join('; ');
  return part === 'body'
    ? new HttpProblem(422, 'validation-error', 'Invalid request body', `${where} is invalid: ${summary}`, errors)
    : new HttpProblem(400, 'validation-error', 'Invalid request', `${where} is invalid: ${summary}`, errors);
}

/** Maps an error to the problem to answer with; `undefined` means it is a bug (500). */
export function problemFor(error: unknown, bodyLimit: number): HttpProblem | undefined {
  if (error instanceof HttpProblem) return error;
  const err = error as Partial<FastifyError> & { validationContext?: string };
  if (error instanceof z.ZodError && err.validationContext) return validationProblem(error, err.validationContext);
  if (error instanceof InvalidVersionError) return new HttpProblem(400, 'invalid-version', 'Invalid model version', error.message);
  if (error instanceof ModelNotFoundError) return new HttpProblem(404, 'model-not-found', 'Model not found', error.message);
  if (error instanceof InvalidModelError) return new HttpProblem(422, 'invalid-model', 'Invalid model', error.message);
  // Storage damage, not a bug in the request or the code: say exactly what failed its check.
  if (error instanceof CorruptArtifactError) return new HttpProblem(500, 'corrupt-model-artifact', 'Corrupt model artifact', error.message);
  if (isRedisUnavailableError(error) || err.statusCode === 503) {
    const detail = err.statusCode === 503 && err.message ? err.message : `Redis is unavailable (${err.message}); try again shortly`;
    const [slug, title] = err.statusCode === 503 && err.name ? typeFromErrorName(err.name) : ['service-unavailable', 'Service unavailable'];
    return new HttpProblem(503, slug, title, detail, undefined, { 'retry-after': String(RETRY_AFTER_SECONDS) });
  }
  switch (err.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new HttpProblem(413, 'body-too-large', 'Request body too large', `the request body is larger than the limit of ${bodyLimit} bytes (BODY_LIMIT)`);
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new HttpProblem(415, 'unsupported-media-type', 'Unsupported media type', `${err.message}; send JSON with Content-Type: application/json`);
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return new HttpProblem(400, 'malformed-json', 'Malformed JSON', 'the request body is not valid JSON');
  }
  if (typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500 && err.message) {
    const [slug, title] = err.code?.startsWith('FST_') || !err.name || err.name === 'Error' ? ['about:blank', STATUS_CODES[err.statusCode] ?? 'Error'] : typeFromErrorName(err.name);
    return new HttpProblem(err.statusCode, slug, title, err.message);
  }
  return undefined;
}

function send(request: FastifyRequest, reply: FastifyReply, problem: HttpProblem): FastifyReply {
  const body: Problem = {
    type: problem.slug === 'about:blank' ? 'about:blank' : `${TYPE_PREFIX}${problem.slug}`,
    title: problem.title,
    status: problem.status,
    detail: problem.detail,
    instance: request.url,
    requestId: request.id,
    ...(problem.errors ? { errors: problem.errors } : {}),
  };
  return reply.code(problem.status).headers(problem.headers).type(PROBLEM_CONTENT_TYPE).send(body);
}

export function useProblemDetails(app: FastifyInstance, options: { bodyLimit: number }): void {
  app.setErrorHandler((error, request, reply) => {
    const problem = problemFor(error, options.bodyLimit);
    if (reply.sent || reply.raw.headersSent) {
      // A streaming response (e.g. SSE) failed midway: nothing can be answered any more.
      request.log.warn({ err: error }, 'error after the response started');
      return;
    }
    if (problem) {
      if (problem.status >= 500) request.log.warn({ err: error }, problem.detail);
      return send(request, reply, problem);
    }
    request.log.error({ err: error }, 'unexpected error');
    return send(
      request,
      reply,
      new HttpProblem(500, 'internal-error', 'Internal server error', `an unexpected error occurred; it is logged under request id ${request.id}`),
    );
  });

  app.setNotFoundHandler((request, reply) =>
    send(request, reply, new HttpProblem(404, 'route-not-found', 'Not found', `no route ${request.method} ${request.url.split('?')[0]}`)),
  );
}
