// Builds the HTTP API without listening: `digits serve` listens on it, tests
// call it over real HTTP. The services come built (services.ts, the composition
// root); this file only wires routes to them. Cross-cutting concerns first
// (request ids, JSON bodies, zod schemas, problem+json errors, API keys, CORS),
// then one plugin per resource.
import cors from '@fastify/cors';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type RouteOptions } from 'fastify';
import type { Config } from '../lib/config.ts';
import { createLogger, type Logger } from '../lib/logger.ts';
import type { JobsService } from '../queue/jobs-service.ts';
import type { ModelAnnouncement } from '../registry/announcements.ts';
import type { ModelRegistry } from '../registry/types.ts';
import { DecodeSlots } from '../serving/decode-budget.ts';
import type { ModelManager } from '../serving/model-manager.ts';
import { useApiKeys } from './plugins/api-keys.ts';
import { useJsonBodies } from './plugins/body-parsing.ts';
import { useMetrics, type ServiceMetrics } from './plugins/metrics.ts';
import { clientErrorProblem, frameworkProblem, useProblemDetails } from './plugins/problem-details.ts';
import { REQUEST_ID_HEADER, requestIdFor, useRequestIds } from './plugins/request-id.ts';
import { useZodSchemas } from './plugins/zod-schemas.ts';
import { consoleRoutes } from './routes/console.ts';
import { docsRoutes } from './routes/docs.ts';
import { healthRoutes } from './routes/health.ts';
import { jobsRoutes } from './routes/jobs.ts';
import { modelsRoutes } from './routes/models.ts';
import { opsRoutes } from './routes/ops.ts';
import { predictRoutes } from './routes/predict.ts';
import { inferenceV2Routes } from './routes/inference-v2.ts';
import { tfServingRoutes } from './routes/tf-serving.ts';
import { modelManagerResolver } from '../serving/model-resolver.ts';
import { PACKAGE } from '../lib/package-info.ts';

/** What createApiServices (services.ts) builds, plus the config and, for tests, hooks. */
export interface AppDeps {
  config: Config;
  registry: ModelRegistry;
  /** Serving; the app starts it when ready (the engine must be initialised: createApiServices does) and stops it on close. */
  models: ModelManager;
  metrics: ServiceMetrics;
  /** The training queue; without it the /v1/jobs routes are not mounted (e.g. a registry-only API). */
  jobs?: JobsService;
  /** Announces promotions to other processes (announceModel on a Redis connection). */
  announce?: (announcement: ModelAnnouncement) => Promise<void>;
  /** Defaults to a pino logger at config.logLevel. */
  logger?: Logger;
  /** Called for every route as it is registered; the OpenAPI contract test lists routes with it. */
  onRoute?: (route: RouteOptions) => void;
}

/** Headers browsers may read from cross-origin responses. */
const EXPOSED_HEADERS = ['location', 'retry-after', 'idempotent-replayed', 'x-model-version', REQUEST_ID_HEADER];

export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const { config } = deps;
  const app = Fastify({
    // pino's Logger is a FastifyBaseLogger; the cast only drops pino-specific typing.
    loggerInstance: (deps.logger ?? createLogger(config)) as FastifyBaseLogger,
    genReqId: requestIdFor,
    requestIdHeader: false,
    bodyLimit: config.bodyLimit,
    // Bounded time per connection: the whole request (headers and body) must arrive
    // within REQUEST_TIMEOUT_MS, else 408 and the socket is closed; Node checks
    // these deadlines every connectionsCheckingInterval, so that is kept well below them.
    requestTimeout: config.requestTimeoutMs,
    keepAliveTimeout: config.keepAliveTimeoutMs,
    http: { connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(config.headersTimeoutMs / 4))) },
    clientErrorHandler: clientErrorProblem,
    frameworkErrors: frameworkProblem,
    // onReady loads every default model: seconds on a busy machine.
    pluginTimeout: 60_000,
  });
  app.server.headersTimeout = config.headersTimeoutMs;
  if (deps.onRoute) app.addHook('onRoute', deps.onRoute);

  useRequestIds(app);
  useJsonBodies(app);
  useZodSchemas(app);
  useProblemDetails(app, { bodyLimit: config.bodyLimit });
  useApiKeys(app, { full: config.apiKeys, predict: config.predictApiKeys });
  const { metrics, models } = deps;
  useMetrics(app, metrics);
  if (config.corsOrigin) {
    await app.register(cors, { origin: config.corsOrigin, exposedHeaders: EXPOSED_HEADERS });
  }

  await app.register(healthRoutes);
  await app.register(consoleRoutes);
  await app.register(modelsRoutes, {
    prefix: '/v1',
    registry: deps.registry,
    ...(deps.announce ? { announce: deps.announce } : {}),
    verify: (version) => models.verify(version),
    onChange: (change) => {
      if (change.type === 'deleted') models.forget(change.version);
      void models.refresh();
    },
  });
  if (deps.jobs) await app.register(jobsRoutes, { prefix: '/v1', jobs: deps.jobs });
  // Every model name's default version, loaded when the app is ready and hot-swapped on announcements.
  app.addHook('onReady', () => models.start());
  app.addHook('onClose', async () => {
    metrics.close();
    await models.stop();
  });
  // Models by name for the protocols that name them (v2, TF Serving, metrics).
  const resolver = modelManagerResolver(models, deps.registry);
  metrics.watchServing({
    loaded: () => resolver.loaded().map(({ name, model }) => ({ name, version: model.info.version, testAccuracy: model.info.testAccuracy })),
    pendingImages: () => resolver.loaded().reduce((sum, { model }) => sum + model.pendingImages, 0),
  });
  // One bound on concurrent image decodes for every route that decodes images.
  const decodeSlots = new DecodeSlots(config.predictDecodeConcurrency);
  await app.register(predictRoutes, {
    prefix: '/v1',
    models,
    maxInstances: config.predictMaxInstances,
    maxPixels: config.predictMaxPixels,
    maxRequestPixels: config.predictMaxRequestPixels,
    slots: decodeSlots,
    bodyLimit: config.bodyLimit,
    rateLimitPerMinute: config.predictRateLimit,
    onPredictions: (version, count) => metrics.predictions.inc({ model_version: version }, count),
    onLatency: (model, seconds) => metrics.predictDuration.observe({ model: resolver.nameOf(model) }, seconds),
  });
  // The protocol routes report by model name.
  const protocolMetrics = {
    onPredictions: ({ version }: { version: string }, count: number) => metrics.predictions.inc({ model_version: version }, count),
    onLatency: (name: string, seconds: number) => metrics.predictDuration.observe({ model: name }, seconds),
  };
  await app.register(inferenceV2Routes, {
    resolver,
    server: { name: PACKAGE.name, version: PACKAGE.version },
    maxInstances: config.predictMaxInstances,
    bodyLimit: config.bodyLimit,
    rateLimitPerMinute: config.predictRateLimit,
    ...protocolMetrics,
  });
  await app.register(tfServingRoutes, {
    resolver,
    maxInstances: config.predictMaxInstances,
    maxPixels: config.predictMaxPixels,
    maxRequestPixels: config.predictMaxRequestPixels,
    slots: decodeSlots,
    bodyLimit: config.bodyLimit,
    rateLimitPerMinute: config.predictRateLimit,
    ...protocolMetrics,
  });
  const jobs = deps.jobs;
  await app.register(opsRoutes, { models, metrics, ...(jobs ? { pingRedis: () => jobs.ping() } : {}) });
  await app.register(docsRoutes);
  return app;
}
