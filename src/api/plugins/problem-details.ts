// Every error leaves the API as RFC 9457 problem+json:
//   { type, title, status, detail, instance, requestId, errors? }
// How an error maps to a status, first match wins (the one place that does):
//   - zod validation failures (route schemas): body → 422, URL/query/headers → 400, with `errors`
//   - HttpProblem: as it says
//   - ServiceError (src/lib/errors.ts; every domain error: queue, registry, serving,
//     predict): its status and problem type; 503s get Retry-After
//   - Redis/BullMQ connection trouble → 503 with Retry-After
//   - fastify's own errors with a 4xx `statusCode`
//   - anything else is a bug: 500, logged with its stack, no internals in the response.
import { isRedisUnavailableError } from '../../lib/redis.ts';
import { randomUUID } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { problemTypeOf, ServiceError } from '../../lib/errors.ts';

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
  readonly status: number;
  readonly slug: string;
  readonly title: string;
  readonly detail: string;
  readonly errors?: FieldError[];
  readonly headers: Record<string, string>;

  constructor(status: number, slug: string, title: string, detail: string, errors?: FieldError[], headers: Record<string, string> = {}) {
    super(detail);
    this.status = status;
    this.slug = slug;
    this.title = title;
    this.detail = detail;
    this.errors = errors;
    this.headers = headers;
    this.name = 'HttpProblem';
  }
}


/** Client-chosen names (unknown fields, query parameters) are echoed at most this long. */
const MAX_NAME_ECHO = 64;
const clip = (name: string) => (name.length > MAX_NAME_ECHO ? `${name.slice(0, MAX_NAME_ECHO)}…` : name);

function zodErrors(error: z.ZodError): FieldError[] {
  return error.issues.flatMap((issue) => {
    const path = issue.path.map((part) => clip(String(part))).join('.');
    if (issue.code === 'unrecognized_keys') {
      return issue.keys.map(clip).map((key) => ({ path: path ? `${path}.${key}` : key, message: `unknown field ${JSON.stringify(key)}` }));
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
  const retryLater = { 'retry-after': String(RETRY_AFTER_SECONDS) };
  if (error instanceof ServiceError) {
    const [slug, title] = error.problemType();
    return new HttpProblem(error.statusCode, slug, title, error.message, undefined, error.statusCode === 503 ? retryLater : {});
  }
  if (isRedisUnavailableError(error)) {
    return new HttpProblem(503, 'service-unavailable', 'Service unavailable', `Redis is unavailable (${err.message}); try again shortly`, undefined, retryLater);
  }
  if (err.statusCode === 503 && err.message) {
    const [slug, title] = err.name && err.name !== 'Error' ? problemTypeOf(err.name) : ['service-unavailable', 'Service unavailable'];
    return new HttpProblem(503, slug, title, err.message, undefined, retryLater);
  }
  switch (err.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new HttpProblem(413, 'body-too-large', 'Request body too large', `the request body is larger than the limit of ${bodyLimit} bytes (BODY_LIMIT)`);
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new HttpProblem(415, 'unsupported-media-type', 'Unsupported media type', `${err.message}; send JSON with Content-Type: application/json`);
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return new HttpProblem(400, 'malformed-json', 'Malformed JSON', 'the request body is not valid JSON');
  }
  // Fastify's and its plugins' own errors (FST_*), and any other library error that declares a client status.
  if (typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500 && err.message) {
    const [slug, title] = err.code?.startsWith('FST_') || !err.name || err.name === 'Error' ? ['about:blank', STATUS_CODES[err.statusCode] ?? 'Error'] : problemTypeOf(err.name);
    return new HttpProblem(err.statusCode, slug, title, err.message);
  }
  return undefined;
}

/** Longest URL echoed back in `instance` or a detail: a 10 KB URL is not repeated to its sender. */
const MAX_URL_ECHO = 256;
const echoUrl = (url: string) => (url.length > MAX_URL_ECHO ? `${url.slice(0, MAX_URL_ECHO)}…` : url);

function problemBody(problem: HttpProblem, instance: string, requestId: string): Problem {
  return {
    type: problem.slug === 'about:blank' ? 'about:blank' : `${TYPE_PREFIX}${problem.slug}`,
    title: problem.title,
    status: problem.status,
    detail: problem.detail,
    instance,
    requestId,
    ...(problem.errors ? { errors: problem.errors } : {}),
  };
}

function send(request: FastifyRequest, reply: FastifyReply, problem: HttpProblem): FastifyReply {
  const body: Problem = {
    ...problemBody(problem, echoUrl(request.url), request.id),
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
    send(request, reply, new HttpProblem(404, 'route-not-found', 'Not found', `no route ${request.method} ${echoUrl(request.url.split('?')[0]!)}`)),
  );
}

/**
 * For Fastify's `frameworkErrors`: URLs the router cannot take (a path segment
 * longer than maxParamLength → 414, a malformed escape → 400), answered as
 * problems without repeating the URL in the detail.
 */
export function frameworkProblem(error: FastifyError, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const problem =
    error.code === 'FST_ERR_MAX_PARAM_LENGTH'
      ? new HttpProblem(414, 'uri-too-long', 'URI too long', 'a path segment of the URL is longer than the router accepts (100 characters)')
      : error.code === 'FST_ERR_BAD_URL'
        ? new HttpProblem(400, 'bad-url', 'Bad URL', 'the URL path has an invalid percent-encoding')
        : new HttpProblem(400, 'bad-request', 'Bad request', error.message);
  return send(request, reply, problem);
}

/** Errors Node's HTTP parser and timers raise before a request reaches Fastify, by `code`. */
const CLIENT_ERRORS: Record<string, [status: number, slug: string, title: string, detail: string]> = {
  ERR_HTTP_REQUEST_TIMEOUT: [408, 'request-timeout', 'Request timeout', 'the request was not received in time (REQUEST_TIMEOUT_MS / HEADERS_TIMEOUT_MS); the connection is closed'],
  HPE_HEADER_OVERFLOW: [431, 'headers-too-large', 'Request header fields too large', 'the request line and headers together are larger than 16 KB (Node.js maxHeaderSize)'],
  HPE_INVALID_METHOD: [400, 'bad-request', 'Bad request', 'malformed HTTP request: unknown method'],
  HPE_INVALID_URL: [400, 'bad-request', 'Bad request', 'malformed HTTP request: invalid URL in the request line'],
  HPE_INVALID_HEADER_TOKEN: [400, 'bad-request', 'Bad request', 'malformed HTTP request: invalid character in a header'],
  HPE_INVALID_CONTENT_LENGTH: [400, 'bad-request', 'Bad request', 'malformed HTTP request: invalid Content-Length'],
  HPE_UNEXPECTED_CONTENT_LENGTH: [400, 'bad-request', 'Bad request', 'malformed HTTP request: Content-Length together with Transfer-Encoding'],
  HPE_INVALID_TRANSFER_ENCODING: [400, 'bad-request', 'Bad request', 'malformed HTTP request: invalid Transfer-Encoding'],
  HPE_INVALID_CHUNK_SIZE: [400, 'bad-request', 'Bad request', 'malformed HTTP request: invalid chunk size'],
  HPE_INVALID_VERSION: [400, 'bad-request', 'Bad request', 'malformed HTTP request: invalid HTTP version'],
};

/**
 * For Fastify's `clientErrorHandler` (Node's 'clientError'): the request never
 * became a Fastify request, so the problem is written to the socket by hand, and
 * the connection closed (Node cannot resynchronise a stream it could not parse).
 */
export function clientErrorProblem(error: Error & { code?: string }, socket: Duplex): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const [status, slug, title, detail] = CLIENT_ERRORS[error.code ?? ''] ?? [400, 'bad-request', 'Bad request', `malformed HTTP request (${error.code ?? 'unknown parse error'})`];
  if (socket.writable) {
    const body = JSON.stringify(problemBody(new HttpProblem(status, slug, title, detail), '', randomUUID()));
    socket.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: ${PROBLEM_CONTENT_TYPE}\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy();
}
