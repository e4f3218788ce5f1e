// Liveness: answers as soon as the process serves HTTP, whatever Redis or the
// registry are doing (readiness is a separate route in the serving issue).
import type { FastifyInstance } from 'fastify';

export async function healthRoutes(app: FastifyInstance): Promise<void> {
  app.get('/healthz', { config: { access: 'public' } }, async () => ({ status: 'ok' as const }));
}
