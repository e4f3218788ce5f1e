// Request bodies are JSON. Two conveniences for people using curl:
//  - an empty body is "no body", even with Content-Type: application/json, so
//    `curl -X POST -H 'content-type: application/json' …/promote` works;
//  - `curl -d '{"epochs":1}'` sends application/x-www-form-urlencoded; its body is
//    read as JSON when it is JSON, and answered 415 (with what to send) when not.
// Anything else, text/plain included, is 415. A route plugin that takes another
// media type (images, multipart) adds its own parser inside its own scope.
import type { FastifyInstance } from 'fastify';
import { HttpProblem } from './problem-details.ts';

export function useJsonBodies(app: FastifyInstance): void {
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser(['application/json', 'text/plain']);
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    const text = String(body);
    if (text.trim() === '') return done(null, undefined);
    parseJson(request, text, done);
  });
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (request, body, done) => {
    const text = String(body);
    if (text.trim() === '') return done(null, undefined);
    parseJson(request, text, (error: Error | null, value?: unknown) => {
      if (!error) return done(null, value);
      done(
        new HttpProblem(415, 'unsupported-media-type', 'Unsupported media type', 'form-encoded bodies are not supported; send JSON with Content-Type: application/json'),
        undefined,
      );
    });
  });
}
