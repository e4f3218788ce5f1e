// The web console: plain ES modules and CSS from public/ (no build step), served
// at / with its assets under /console/ (and its icon at /favicon.ico too), and the chart library's browser build
// straight from node_modules (no CDN: the service may run without internet).
// The console only calls the public /v1 API, like any other client.
import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';
import { defaultAccess } from '../plugins/api-keys.ts';
import { createReadStream } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const PUBLIC_DIR = fileURLToPath(new URL('../../../public/', import.meta.url));
/** uplot's package.json points `main` at dist/uPlot.cjs.js; its browser builds sit next to it. */
const UPLOT_DIST = dirname(createRequire(import.meta.url).resolve('uplot'));

export async function consoleRoutes(app: FastifyInstance): Promise<void> {
  // The console's files are public; its page asks for a key before calling /v1.
  defaultAccess(app, 'public');
  // decorateReply: false, so this plugin never clashes with another @fastify/static (e.g. /docs).
  await app.register(fastifyStatic, { root: PUBLIC_DIR, prefix: '/console/', decorateReply: false, index: false });
  await app.register(fastifyStatic, {
    root: UPLOT_DIST,
    prefix: '/console/vendor/uplot/',
    decorateReply: false,
    index: false,
    allowedPath: (path) => path === '/uPlot.iife.min.js' || path === '/uPlot.min.css',
  });
  app.get('/', { schema: { hide: true }, config: { access: 'public' } }, async (_request, reply) =>
    reply.type('text/html; charset=utf-8').header('cache-control', 'no-cache').send(createReadStream(join(PUBLIC_DIR, 'index.html'))),
  );
  // Browsers ask for /favicon.ico on their own (the page itself links /console/favicon.svg).
  app.get('/favicon.ico', { schema: { hide: true }, config: { access: 'public' } }, async (_request, reply) =>
    reply.type('image/x-icon').header('cache-control', 'public, max-age=86400').send(createReadStream(join(PUBLIC_DIR, 'favicon.ico'))),
  );
}
