// Checks real HTTP responses against openapi.yaml. Any test can use it:
//   const res = await request(app.server).get('/v1/models');
//   expectContract(res);
// It finds the documented operation for the request's method and path, the
// response for its status (or `default`), the media type, and validates JSON
// bodies against the schema with ajv (OpenAPI 3.1 schemas are JSON Schema 2020-12).
import { readFileSync } from 'node:fs';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import ajvFormats from 'ajv-formats';
import { parse } from 'yaml';
import type { Response } from 'supertest';
import { expect } from 'vitest';

export const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'] as const;

interface MediaType {
  schema?: object;
}
interface ResponseObject {
  $ref?: string;
  content?: Record<string, MediaType>;
}
interface Operation {
  responses: Record<string, ResponseObject>;
}
export interface OpenApiSpec {
  paths: Record<string, Partial<Record<(typeof HTTP_METHODS)[number], Operation>>>;
  components: Record<string, Record<string, unknown>>;
}

const SPEC_ID = 'https://digits-service.local/openapi.yaml';
const SPEC_PATH = new URL('../../openapi.yaml', import.meta.url);

export const spec = parse(readFileSync(SPEC_PATH, 'utf8')) as OpenApiSpec;

// The whole document is added under one id, so `#/components/...` refs inside
// response schemas resolve. OpenAPI-only keywords (example, etc.) are not errors.
const ajv = new Ajv2020({ allErrors: true, strict: false });
// ajv-formats is CommonJS; under NodeNext its plugin is the `default` property.
ajvFormats.default(ajv);
ajv.addSchema({ ...spec, $id: SPEC_ID });

const pointer = (segments: string[]) => segments.map((s) => s.replaceAll('~', '~0').replaceAll('/', '~1')).join('/');
const validators = new Map<string, ValidateFunction>();

/** A compiled validator for the schema at a JSON pointer into the spec (`['components','schemas','Job']`). */
export function validatorAt(segments: string[]): ValidateFunction {
  const ref = `${SPEC_ID}#/${pointer(segments)}`;
  let validate = validators.get(ref);
  if (!validate) {
    validate = ajv.compile({ $ref: ref });
    validators.set(ref, validate);
  }
  return validate;
}

/** `/v1/models/{version}` → a regex matching concrete paths. */
function templateRegex(template: string): RegExp {
  const escaped = template.split(/\{[^}]+\}/).map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  return new RegExp(`^${escaped.join('[^/]+')}$`);
}

/** The documented path template for a concrete path (literal segments win over parameters). */
export function findPathTemplate(path: string): string | undefined {
  const matches = Object.keys(spec.paths).filter((template) => templateRegex(template).test(path));
  // Fewer parameters first; then more literal text (`/v1/models/{name}:predict` before `/v1/models/{version}`).
  const literal = (template: string) => template.replace(/\{[^}]+\}/g, '').length;
  return matches.sort((a, b) => a.split('{').length - b.split('{').length || literal(b) - literal(a))[0];
}

/** fastify's `/v1/models/:version` → OpenAPI's `/v1/models/{version}`. */
export function toOpenApiPath(fastifyUrl: string): string {
  // `:name(^regex)` loses its regex; `::` is a literal colon (`/v1/models/:name(^[^:/]+)::predict`).
  return fastifyUrl
    .replace(/\(\^[^)]*\)/g, '')
    .split('::')
    .map((part) => part.replace(/:([A-Za-z0-9_]+)/g, '{$1}'))
    .join(':');
}

function resolveResponse(response: ResponseObject, segments: string[]): [ResponseObject, string[]] {
  if (!response.$ref) return [response, segments];
  const refSegments = response.$ref.replace(/^#\//, '').split('/');
  let target: unknown = spec;
  for (const segment of refSegments) target = (target as Record<string, unknown>)[segment];
  return [target as ResponseObject, refSegments];
}

export interface ObservedResponse {
  method: string;
  /** Path without the query string. */
  path: string;
  status: number;
  contentType: string | undefined;
  body: unknown;
}

/** Everything wrong with a response according to openapi.yaml; [] when it conforms. */
export function contractViolations(observed: ObservedResponse): string[] {
  const where = `${observed.method} ${observed.path} → ${observed.status}`;
  const template = findPathTemplate(observed.path);
  if (!template) return [`${where}: path not in openapi.yaml`];
  const method = observed.method.toLowerCase() as (typeof HTTP_METHODS)[number];
  const operation = spec.paths[template]![method];
  if (!operation) return [`${where}: ${method.toUpperCase()} ${template} not in openapi.yaml`];
  const statusKey = String(observed.status) in operation.responses ? String(observed.status) : 'default';
  const documented = operation.responses[statusKey];
  if (!documented) return [`${where}: status not documented for ${method.toUpperCase()} ${template}`];
  const [response, segments] = resolveResponse(documented, ['paths', template, method, 'responses', statusKey]);
  const mediaType = (observed.contentType ?? '').split(';')[0]!.trim();
  if (!response.content) return mediaType ? [`${where}: documented without a body, but one came (${mediaType})`] : [];
  if (!(mediaType in response.content)) {
    return [`${where}: content type ${JSON.stringify(mediaType)} not documented (documented: ${Object.keys(response.content).join(', ')})`];
  }
  if (!mediaType.endsWith('json') || !response.content[mediaType]!.schema) return [];
  const validate = validatorAt([...segments, 'content', mediaType, 'schema']);
  if (validate(observed.body)) return [];
  return (validate.errors ?? []).map((e) => `${where}: body${e.instancePath} ${e.message} (${e.schemaPath})`);
}

/** supertest's response, checked against the spec (and for an X-Request-Id). */
export function expectContract(res: Response): void {
  // superagent keeps the request it answered; its typings leave it out.
  const { req } = res as Response & { req: { method: string; path: string } };
  const body = (res.headers['content-type'] ?? '').includes('json') && res.text !== undefined && res.text !== '' ? JSON.parse(res.text) : res.body;
  const violations = res.headers['x-request-id'] ? [] : [`${req.method} ${req.path}: no X-Request-Id header`];
  violations.push(...contractViolations({
    method: req.method,
    path: req.path.split('?')[0]!,
    status: res.status,
    contentType: res.headers['content-type'],
    body,
  }));
  expect(violations).toEqual([]);
}
