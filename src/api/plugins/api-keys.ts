// Who may call a route is a property of the matched route, never of the URL text:
// every route declares `config: { access }` and the onRequest hook reads it from
// request.routeOptions, after the router has decoded and matched the path, so
// `/%761/jobs` and `/v1/jobs` are one route with one policy. A route registered
// without a policy stops start-up (onReady), so a route added later cannot be
// forgotten; unmatched paths are 404 for everyone.
//
// Scopes, as TorchServe separates its inference and management APIs:
//   public  — probes, metrics, docs, the console's static files: no key
//   predict — POST /v1/predict and model reads: a key from API_KEYS or PREDICT_API_KEYS
//   manage  — jobs, promotion, everything else under /v1: a key from API_KEYS
// Keys are sent as `Authorization: Bearer <key>` or `X-API-Key: <key>`; with
// neither list set, every route is open.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyRequest, RouteOptions } from 'fastify';
import { HttpProblem } from './problem-details.ts';

export const ACCESS_POLICIES = ['public', 'predict', 'manage'] as const;
export type AccessPolicy = (typeof ACCESS_POLICIES)[number];

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Who may call this route (src/api/plugins/api-keys.ts). Every route must say. */
    access?: AccessPolicy;
  }
}

export interface ApiKeys {
  /** API_KEYS: may call everything. */
  full: readonly string[];
  /** PREDICT_API_KEYS: may call `predict` routes only. */
  predict: readonly string[];
}

/** Compares digests, so neither the key's content nor its length leaks through timing. */
const digest = (text: string) => createHash('sha256').update(text).digest();

/** The key a request presents, or undefined; two different keys in one request are refused. */
function presentedKey(request: FastifyRequest): string | undefined {
  const header = request.headers['x-api-key'];
  const xApiKey = typeof header === 'string' ? header.trim() : undefined;
  const authorization = request.headers.authorization;
  const bearer = typeof authorization === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(authorization)?.[1] : undefined;
  if (xApiKey !== undefined && bearer !== undefined && xApiKey !== bearer) {
    throw new HttpProblem(400, 'ambiguous-credentials', 'Ambiguous credentials', 'the request sends two different API keys (X-API-Key and Authorization: Bearer); send one');
  }
  return xApiKey ?? bearer;
}

interface Client {
  /** "key:<first 16 hex of the key's SHA-256>" for a valid key, else "ip:<address>": never the key itself. */
  id: string;
  /** The scope of the key the client authenticated with; undefined without a valid key. */
  scope?: 'full' | 'predict';
}

const CLIENTS = new WeakMap<FastifyRequest, Client>();

/**
 * Who the client is, the one answer used by authorisation and the rate limiter:
 * a valid API key identifies it (keys may be shared by many IPs), anything else
 * falls back to the IP, so inventing keys never buys a fresh rate-limit bucket.
 */
export function clientOf(request: FastifyRequest): Client {
  return CLIENTS.get(request) ?? { id: `ip:${request.ip}` };
}

function identify(request: FastifyRequest, keyring: Map<string, 'full' | 'predict'>): Client & { presented: boolean } {
  const key = presentedKey(request);
  if (key === undefined) return { id: `ip:${request.ip}`, presented: false };
  const candidate = digest(key);
  let scope: 'full' | 'predict' | undefined;
  for (const [known, knownScope] of keyring) {
    // Every key is compared, so timing says nothing about which list matched.
    if (timingSafeEqual(Buffer.from(known, 'hex'), candidate) && scope !== 'full') scope = knownScope;
  }
  return scope ? { id: `key:${candidate.toString('hex').slice(0, 16)}`, scope, presented: true } : { id: `ip:${request.ip}`, presented: true };
}

const unauthorized = (detail: string, error?: string) =>
  new HttpProblem(401, 'unauthorized', 'Unauthorized', detail, undefined, {
    'www-authenticate': `Bearer realm="digits"${error ? `, error="${error}"` : ''}`,
  });

/** Routes that come from third-party plugins and carry no credentials by design. */
function isCorsPreflight(route: RouteOptions): boolean {
  return route.method === 'OPTIONS' && route.url === '*';
}

/** Gives every route registered in `scope` (and its children) `policy` unless it declares its own: for plugins' routes (static files). */
export function defaultAccess(scope: FastifyInstance, policy: AccessPolicy): void {
  scope.addHook('onRoute', (route) => {
    route.config = { ...route.config, access: route.config?.access ?? policy };
  });
}

export function useApiKeys(app: FastifyInstance, keys: ApiKeys): void {
  // Every route must declare its access; checked once all plugins have run their onRoute hooks.
  const routes: RouteOptions[] = [];
  app.addHook('onRoute', (route) => {
    if (isCorsPreflight(route)) route.config = { ...route.config, access: 'public' };
    routes.push(route);
  });
  app.addHook('onReady', async () => {
    const undeclared = routes.filter((route) => !ACCESS_POLICIES.includes(route.config?.access as AccessPolicy));
    if (undeclared.length > 0) {
      const names = undeclared.map((route) => `${[route.method].flat().join(',')} ${route.url}`).join('; ');
      throw new Error(`routes without an access policy (add config: { access: 'public' | 'predict' | 'manage' }): ${names}`);
    }
  });

  const keyring = new Map<string, 'full' | 'predict'>();
  for (const key of keys.predict) keyring.set(digest(key).toString('hex'), 'predict');
  for (const key of keys.full) keyring.set(digest(key).toString('hex'), 'full');
  const enabled = keyring.size > 0;

  app.addHook('onRequest', async (request) => {
    // Unmatched paths go on to the 404 handler whatever the credentials.
    if (request.is404) return;
    // A route with no policy cannot be reached (start-up refuses it); should one slip through, it is treated as `manage`.
    const access = request.routeOptions.config.access ?? 'manage';
    // Without keys configured, or on a public route, the client is its IP (clientOf's fallback).
    if (!enabled || access === 'public') return;
    const client = identify(request, keyring);
    CLIENTS.set(request, client);
    if (!client.presented) throw unauthorized('an API key is required: send Authorization: Bearer <key> or X-API-Key: <key>');
    if (!client.scope) throw unauthorized('the API key is not valid', 'invalid_token');
    if (access === 'manage' && client.scope !== 'full') {
      throw new HttpProblem(
        403,
        'insufficient-scope',
        'Forbidden',
        'this API key may only predict and read models (PREDICT_API_KEYS); jobs and model management need a key from API_KEYS',
        undefined,
        { 'www-authenticate': 'Bearer realm="digits", error="insufficient_scope"' },
      );
    }
  });
}
