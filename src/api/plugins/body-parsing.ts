// Request bodies are JSON. Two conveniences for people using curl:
//  - an empty body is "no body", even with Content-Type: application/json, so
//    `curl -X POST -H 'content-type: application/json' …/promote` works;
//  - `curl -d '{"epochs":1}'` sends application/x-www-form-urlencoded; its body is
//    read as JSON when it is JSON, and answered 415 (with what to send) when not.
// Anything else, text/plain included, is 415. A route plugin that takes another
// media type (images, multipart) adds its own parser inside its own scope.
import type { FastifyInstance } from 'fastify';
import { ForbiddenJsonKeyError, parseClientJson } from '../../lib/safe-json.ts';
import { parseJsonBody } from '../../serving/instances.ts';
import { HttpProblem } from './problem-details.ts';

/** Client JSON → value, or the problem that says what is wrong with it. */
function parseBody(text: string): unknown {
  try {
    return parseClientJson(text);
  } catch (error) {
    if (error instanceof ForbiddenJsonKeyError) throw new HttpProblem(400, 'forbidden-json-key', 'Forbidden JSON key', error.message);
    throw new HttpProblem(400, 'malformed-json', 'Malformed JSON', `the request body is not valid JSON: ${(error as Error).message}`);
  }
}

export function useJsonBodies(app: FastifyInstance): void {
  app.removeContentTypeParser(['application/json', 'text/plain']);
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => {
    const text = String(body);
    if (text.trim() === '') return done(null, undefined);
    try {
      done(null, parseBody(text));
    } catch (error) {
      done(error as Error, undefined);
    }
  });
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_request, body, done) => {
    const text = String(body);
    if (text.trim() === '') return done(null, undefined);
    let value: unknown;
    try {
      value = parseClientJson(text);
    } catch (error) {
      if (error instanceof ForbiddenJsonKeyError) return done(new HttpProblem(400, 'forbidden-json-key', 'Forbidden JSON key', error.message), undefined);
      return done(
        new HttpProblem(415, 'unsupported-media-type', 'Unsupported media type', 'form-encoded bodies are not supported; send JSON with Content-Type: application/json'),
        undefined,
      );
    }
    done(null, value);
  });
}

/**
 * For the inference plugins (/v1/predict, v2, TF Serving): JSON parsed as bytes up to
 * `bodyLimit` with the predict path's nesting limit (parseJsonBody); an empty body is undefined.
 */
export function usePredictJson(app: FastifyInstance, bodyLimit: number): void {
  app.removeContentTypeParser(['application/json', 'text/plain']);
  app.addContentTypeParser('application/json', { parseAs: 'buffer', bodyLimit }, (_request, body, done) => {
    try {
      done(null, body.length === 0 ? undefined : parseJsonBody(body as Buffer));
    } catch (error) {
      done(error as Error, undefined);
    }
  });
}
