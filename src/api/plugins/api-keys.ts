// With API_KEYS set, every /v1 route needs one of the keys, sent as
// `Authorization: Bearer <key>` or `X-API-Key: <key>`, and so does every Open
// Inference Protocol model route (/v2/models/…, by matched route). /healthz, /v2,
// /v2/health/* and the other operational routes stay open for load balancers and probes.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { HttpProblem } from './problem-details.ts';

const PROTECTED_PREFIX = '/v1/';
const PROTECTED_V2_ROUTES = '/v2/models/';

/** Compares digests, so neither the key's content nor its length leaks through timing. */
const digest = (text: string) => createHash('sha256').update(text).digest();

function presentedKey(headers: Record<string, string | string[] | undefined>): string | undefined {
  const header = headers['x-api-key'];
  if (typeof header === 'string') return header;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(typeof headers.authorization === 'string' ? headers.authorization : '');
  return match?.[1];
}

export function useApiKeys(app: FastifyInstance, keys: readonly string[]): void {
  if (keys.length === 0) return;
  const accepted = keys.map(digest);
  app.addHook('onRequest', async (request) => {
    // CORS preflights never carry credentials; the real request that follows does.
    const v2Model = request.routeOptions.url?.startsWith(PROTECTED_V2_ROUTES) ?? false;
    if (request.method === 'OPTIONS' || (!request.url.startsWith(PROTECTED_PREFIX) && !v2Model)) return;
    const key = presentedKey(request.headers);
    if (key === undefined) {
      throw new HttpProblem(401, 'unauthorized', 'Unauthorized', 'an API key is required: send Authorization: Bearer <key> or X-API-Key: <key>', undefined, {
        'www-authenticate': 'Bearer realm="digits"',
      });
    }
    const candidate = digest(key);
    if (!accepted.some((known) => timingSafeEqual(known, candidate))) {
      throw new HttpProblem(401, 'unauthorized', 'Unauthorized', 'the API key is not valid', undefined, {
        'www-authenticate': 'Bearer realm="digits", error="invalid_token"',
      });
    }
  });
}
