// /v1/jobs: queue training jobs, follow them (JSON or Server-Sent Events), cancel them.
// Errors from the jobs service carry their status (404, 409, 422, 503); the
// problem+json handler turns them into problem documents.
import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import type { JobsService } from '../../queue/jobs-service.ts';
import type { JobEvent } from '../../queue/job-stream.ts';
import { JOB_STATES, JobRequestSchema } from '../../queue/schema.ts';
import type { ZodTypeProvider } from '../plugins/zod-schemas.ts';

export interface JobsRoutesOptions {
  jobs: JobsService;
}

const JobParams = z.object({ id: z.string().min(1).max(200) });

const ListQuery = z.object({
  state: z.enum(JOB_STATES).optional(),
  limit: z.coerce.number().int().min(1).max(100).default(20),
  cursor: z.string().min(1).max(200).optional(),
});

const CreateHeaders = z.looseObject({
  'idempotency-key': z
    .string()
    .regex(/^[\x21-\x7e]{1,255}$/, 'Idempotency-Key must be 1–255 printable ASCII characters without spaces')
    .optional(),
});

/** Jobs are private to management keys (API_KEYS), reads included. */
const MANAGE = { access: 'manage' } as const;

/** Comment lines keep proxies from closing a quiet stream (a long epoch). */
const KEEP_ALIVE_MS = 15_000;

export const jobsRoutes: FastifyPluginAsync<JobsRoutesOptions> = async (app, { jobs }) => {
  const api = app.withTypeProvider<ZodTypeProvider>();
  const location = (id: string) => `${app.prefix}/jobs/${id}`;
  // Open event streams would keep app.close() waiting until their jobs end.
  const streams = new Set<AbortController>();
  app.addHook('preClose', async () => {
    for (const stream of streams) stream.abort();
  });

  api.post(
    '/jobs',
    // No body (or an empty one) means the default preset (DEFAULT_PRESET, `fast`).
    { schema: { body: JobRequestSchema.prefault({}), headers: CreateHeaders }, config: MANAGE },
    async (request, reply) => {
      const { job, created } = await jobs.create(request.body, request.headers['idempotency-key']);
      reply.header('location', location(job.id));
      if (!created) reply.header('idempotent-replayed', 'true');
      return reply.code(created ? 202 : 200).send(job);
    },
  );

  api.get('/jobs', { schema: { querystring: ListQuery }, config: MANAGE }, async (request) => jobs.list(request.query));

  api.get('/jobs/:id', { schema: { params: JobParams }, config: MANAGE }, async (request) => jobs.get(request.params.id));

  api.post('/jobs/:id/cancel', { schema: { params: JobParams }, config: MANAGE }, async (request, reply) => {
    const job = await jobs.cancel(request.params.id);
    // 202: an active job was asked to stop and will show cancelled once it has.
    return reply.code(job.state === 'cancelled' ? 200 : 202).send(job);
  });

  api.get('/jobs/:id/events', { schema: { params: JobParams }, config: MANAGE }, async (request, reply) => {
    const stop = new AbortController();
    streams.add(stop);
    stop.signal.addEventListener('abort', () => streams.delete(stop));
    const stream = jobs.events(request.params.id, stop.signal);
    // The first event (the current job) is read before answering, so an unknown
    // id or a Redis outage is still an ordinary 404/503 problem response.
    const first = await stream.next().catch((error: unknown) => {
      stop.abort();
      throw error;
    });
    reply.hijack();
    const raw = reply.raw;
    raw.writeHead(200, {
      ...(reply.getHeaders() as Record<string, string>),
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    const send = ({ event, data }: JobEvent | { event: 'error'; data: unknown }) =>
      raw.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    raw.on('close', () => stop.abort());
    const keepAlive = setInterval(() => raw.write(': keep-alive\n\n'), KEEP_ALIVE_MS);
    try {
      if (!first.done) send(first.value);
      for await (const event of stream) send(event);
    } catch (error) {
      const err = error as Error & { statusCode?: number };
      request.log.warn({ err }, 'job event stream ended by an error');
      send({ event: 'error', data: { status: err.statusCode ?? 500, detail: err.message } });
    } finally {
      clearInterval(keepAlive);
      stop.abort();
      raw.end();
    }
  });
};
