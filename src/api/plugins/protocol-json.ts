// Shared set-up of the routes that speak another server's protocol (Open
// Inference Protocol, TF Serving REST): both answer errors as {"error": "<message>"}
// (with the status and message our problem+json would carry), parse JSON with
// the predict path's nesting limit, and share /v1/predict's rate limit.
import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { RateLimitExceededError } from '../routes/predict.ts';
import { clientOf } from './api-keys.ts';
import { usePredictJson } from './body-parsing.ts';
import { problemFor } from './problem-details.ts';

export interface ProtocolJsonOptions {
  bodyLimit: number;
  /** Requests per minute per client (PREDICT_RATE_LIMIT); 0 = off. */
  rateLimitPerMinute: number;
}

function sendError(request: FastifyRequest, reply: FastifyReply, error: unknown, bodyLimit: number): FastifyReply {
  const problem = problemFor(error, bodyLimit);
  if (!problem) request.log.error({ err: error }, 'unexpected error');
  else if (problem.status >= 500) request.log.warn({ err: error }, problem.detail);
  const status = problem?.status ?? 500;
  const message = problem?.detail ?? `an unexpected error occurred; it is logged under request id ${request.id}`;
  return reply.code(status).headers(problem?.headers ?? {}).type('application/json; charset=utf-8').send({ error: message });
}

/** Call first in the plugin; returns the route options (access policy and rate limit) for its inference routes. */
export async function useProtocolJson(app: FastifyInstance, options: ProtocolJsonOptions): Promise<object> {
  const { bodyLimit } = options;
  app.setErrorHandler((error, request, reply) => sendError(request, reply, error, bodyLimit));
  usePredictJson(app, bodyLimit);
  // Inference is open to predict-only keys (src/api/plugins/api-keys.ts).
  if (options.rateLimitPerMinute <= 0) return { config: { access: 'predict' } };
  await app.register(rateLimit, {
    global: false,
    keyGenerator: (request) => clientOf(request).id,
    errorResponseBuilder: (_request, context) => new RateLimitExceededError(context.max, context.after),
  });
  return { config: { access: 'predict', rateLimit: { max: options.rateLimitPerMinute, timeWindow: 60_000 } } };
}
