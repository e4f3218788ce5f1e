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
  // Ready means the API can do its work: Redis answers (jobs, model announcements)
  // and every model name with a default version has a loadable model (a name whose
  // new default fails to load but still serves its last good model stays ready;
  // the problem is listed). Having no model at all is not "unready": jobs can still
  // be posted to train one.
  app.get('/readyz', { config: { access: 'public' } }, async (_request, reply) => {
    let redis: 'up' | 'down' | 'not-configured' = 'not-configured';
    const problems: string[] = [];
    if (pingRedis) {
      try {
        await pingRedis();
        redis = 'up';
      } catch (error) {
        redis = 'down';
        problems.push(`Redis is unreachable: ${(error as Error).message}`);
      }
    }
    const served = models.status();
    for (const model of served) {
      if (model.servedVersion === null && model.problem) problems.push(`model ${JSON.stringify(model.name)}: ${model.problem}`);
    }
    const ready = problems.length === 0;
    return reply.code(ready ? 200 : 503).send({
      status: ready ? 'ready' : 'unready',
      redis,
      ...(problems.length > 0 ? { detail: problems.join('; ') } : {}),
      model: models.active ?? null,
      models: served,
    });
  });

  app.get('/metrics', { config: { access: 'public' } }, async (_request, reply) =>
    reply.type(metrics.registry.contentType).header('cache-control', 'no-store').send(await metrics.render()),
  );
}
