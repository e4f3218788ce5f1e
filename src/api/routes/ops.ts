// Operations: readiness for load balancers and orchestrators, metrics for Prometheus.
// (Liveness, /healthz, answers whatever Redis does; readiness does not.)
import type { FastifyInstance } from 'fastify';
import type { ModelManager } from '../../serving/model-manager.ts';
import type { ServiceMetrics } from '../plugins/metrics.ts';

export interface OpsRoutesOptions {
  models: ModelManager;
  metrics: ServiceMetrics;
  /** Resolves when Redis answers (JobsService.ping); absent when the API runs without a queue. */
  pingRedis?: () => Promise<void>;
}

export async function opsRoutes(app: FastifyInstance, { models, metrics, pingRedis }: OpsRoutesOptions): Promise<void> {
  // Ready means the API can do its work: Redis answers (jobs, model announcements).
  // Having no model yet is not "unready": jobs can still be posted to train one.
  app.get('/readyz', { config: { access: 'public' } }, async (_request, reply) => {
    let redis: 'up' | 'down' | 'not-configured' = 'not-configured';
    let redisError: string | undefined;
    if (pingRedis) {
      try {
        await pingRedis();
        redis = 'up';
      } catch (error) {
        redis = 'down';
        redisError = (error as Error).message;
      }
    }
    const ready = redis !== 'down';
    return reply.code(ready ? 200 : 503).send({
      status: ready ? 'ready' : 'unready',
      redis,
      ...(redisError ? { detail: `Redis is unreachable: ${redisError}` } : {}),
      model: models.active ?? null,
    });
  });

  app.get('/metrics', { config: { access: 'public' } }, async (_request, reply) =>
    reply.type(metrics.registry.contentType).header('cache-control', 'no-store').send(await metrics.render()),
  );
}
