// The API's documentation, from the one openapi.yaml at the top of the repository:
// GET /openapi.yaml as written, and GET /docs rendered from it to plain HTML on the
// server (no CDN, no script: it works offline and behind strict CSPs).
import type { FastifyInstance } from 'fastify';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

export const OPENAPI_PATH = fileURLToPath(new URL('../../../openapi.yaml', import.meta.url));

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options'];

const escape = (text: unknown) =>
  String(text).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

const isObject = (value: Json | undefined): value is JsonObject =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** Component kinds that get a section of their own, and the anchor prefix of each. */
const COMPONENT_ANCHORS: Record<string, string> = { schemas: 'schema', responses: 'response', parameters: 'parameter', headers: 'header' };

/** "#/components/schemas/Job" → a link to that component's section. */
function refLink(ref: string): string {
  const [, , kind = 'schemas', name = ref] = ref.split('/');
  return `<a href="#${COMPONENT_ANCHORS[kind] ?? 'schema'}-${escape(name)}">${escape(name)}</a>`;
}

/** Descriptions are CommonMark; enough of it for reading: `code` spans, and line breaks kept (CSS pre-line). */
const inline = (text: Json | undefined) => (text === undefined || text === null ? '' : escape(text).replace(/`([^`]+)`/g, '<code>$1</code>'));
const prose = (text: Json | undefined) => (typeof text === 'string' && text.trim() ? `<p class="prose">${inline(text.trim())}</p>` : '');

/** A schema as a compact nested list: type, constraints, properties (required ones marked). */
function renderSchema(schema: Json | undefined, depth = 0): string {
  if (!isObject(schema)) return '';
  if (typeof schema.$ref === 'string') return refLink(schema.$ref);
  if (depth > 6) return '…';
  const parts: string[] = [];
  for (const key of ['oneOf', 'anyOf', 'allOf']) {
    const options = schema[key];
    if (Array.isArray(options)) parts.push(`${key} (${options.map((option) => renderSchema(option, depth + 1)).join(' | ')})`);
  }
  if (schema.type !== undefined) parts.push(`<code>${escape(Array.isArray(schema.type) ? schema.type.join(' | ') : schema.type)}</code>`);
  if (schema.format !== undefined) parts.push(`(${escape(schema.format)})`);
  if (Array.isArray(schema.enum)) parts.push(`one of ${schema.enum.map((v) => `<code>${escape(JSON.stringify(v))}</code>`).join(', ')}`);
  for (const key of ['minimum', 'maximum', 'minItems', 'maxItems', 'minLength', 'maxLength', 'default']) {
    if (schema[key] !== undefined) parts.push(`${key} ${escape(JSON.stringify(schema[key]))}`);
  }
  if (schema.description !== undefined) parts.push(`— ${inline(schema.description)}`);
  if (isObject(schema.items)) parts.push(`of ${renderSchema(schema.items, depth + 1)}`);
  if (isObject(schema.properties)) {
    const required = new Set(Array.isArray(schema.required) ? schema.required.map(String) : []);
    const rows = Object.entries(schema.properties).map(
      ([name, property]) =>
        `<li><code>${escape(name)}</code>${required.has(name) ? ' <em>required</em>' : ''}: ${renderSchema(property, depth + 1)}</li>`,
    );
    parts.push(`<ul>${rows.join('')}</ul>`);
  }
  return parts.join(' ');
}

function renderContent(content: Json | undefined): string {
  if (!isObject(content)) return '';
  return Object.entries(content)
    .map(([type, media]) => `<div class="media"><code>${escape(type)}</code> ${isObject(media) ? renderSchema(media.schema) : ''}</div>`)
    .join('');
}

function renderResponse(response: Json | undefined): string {
  if (!isObject(response)) return '';
  if (typeof response.$ref === 'string') return refLink(response.$ref);
  return `${inline(response.description)}${renderContent(response.content)}`;
}

function renderOperation(path: string, method: string, operation: JsonObject): string {
  const id = `${method}-${path}`.replace(/[^A-Za-z0-9]+/g, '-');
  const parameters = Array.isArray(operation.parameters) ? operation.parameters.filter(isObject) : [];
  const responses = isObject(operation.responses) ? Object.entries(operation.responses) : [];
  return `<section class="operation" id="${escape(id)}">
<h3><span class="method ${escape(method)}">${escape(method.toUpperCase())}</span> <code>${escape(path)}</code> ${inline(operation.summary)}</h3>
${prose(operation.description)}
${parameters.length ? `<h4>Parameters</h4><ul>${parameters.map((p) => (typeof p.$ref === 'string' ? `<li>${refLink(p.$ref)}</li>` : `<li><code>${escape(p.name)}</code> (${escape(p.in)}${p.required ? ', required' : ''}): ${renderSchema(p.schema)} ${inline(p.description)}</li>`)).join('')}</ul>` : ''}
${isObject(operation.requestBody) ? `<h4>Request body</h4>${prose(operation.requestBody.description)}${renderContent(operation.requestBody.content)}` : ''}
${responses.length ? `<h4>Responses</h4><ul>${responses.map(([status, response]) => `<li><strong>${escape(status)}</strong> ${renderResponse(response)}</li>`).join('')}</ul>` : ''}
</section>`;
}

/** The whole page: info, an index of operations, each operation, then the shared schemas. */
export function renderDocs(spec: JsonObject): string {
  const info = isObject(spec.info) ? spec.info : {};
  const operations: [string, string, JsonObject][] = [];
  for (const [path, item] of Object.entries(isObject(spec.paths) ? spec.paths : {})) {
    if (!isObject(item)) continue;
    for (const method of HTTP_METHODS) if (isObject(item[method])) operations.push([path, method, item[method] as JsonObject]);
  }
  const components = isObject(spec.components) ? spec.components : {};
  const section = (kind: string, render: (value: Json) => string) =>
    Object.entries(isObject(components[kind]) ? (components[kind] as JsonObject) : {})
      .map(([name, value]) => `<section id="${COMPONENT_ANCHORS[kind]}-${escape(name)}"><h3>${escape(name)}</h3>${render(value)}</section>`)
      .join('\n');
  const index = operations
    .map(([path, method, op]) => `<li><a href="#${escape(`${method}-${path}`.replace(/[^A-Za-z0-9]+/g, '-'))}">${escape(method.toUpperCase())} ${escape(path)}</a> ${inline(op.summary)}</li>`)
    .join('');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escape(info.title ?? 'API')} — API reference</title>
<style>
body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
code{font:13px ui-monospace,monospace;background:#f3f3f3;padding:0 .2em;border-radius:3px}
.operation{border-top:1px solid #ddd;padding:.5rem 0}.method{font:bold 13px ui-monospace,monospace;padding:.1em .4em;border-radius:3px;color:#fff;background:#555}
.get{background:#2a7ab0}.post{background:#2f9e44}.delete{background:#c92a2a}.put,.patch{background:#e67700}
ul{margin:.2rem 0}.media{margin:.3rem 0}.prose{white-space:pre-line}h3{font-size:1.05rem;margin:.6rem 0}h4{margin:.5rem 0 .2rem}
</style></head><body>
<h1>${escape(info.title ?? 'API')} <small>${escape(info.version ?? '')}</small></h1>
${prose(info.description)}
<p>Machine-readable: <a href="/openapi.yaml">/openapi.yaml</a> (OpenAPI ${escape(spec.openapi ?? '')}).</p>
<h2>Operations</h2><ul>${index}</ul>
${operations.map(([path, method, op]) => renderOperation(path, method, op)).join('\n')}
<h2>Responses</h2>
${section('responses', renderResponse)}
<h2>Parameters</h2>
${section('parameters', (p) => (isObject(p) ? `<code>${escape(p.name)}</code> (${escape(p.in)}${p.required ? ', required' : ''}): ${renderSchema(p.schema)} ${prose(p.description)}` : ''))}
<h2>Headers</h2>
${section('headers', (h) => (isObject(h) ? `${prose(h.description)} ${renderSchema(h.schema)}` : ''))}
<h2>Schemas</h2>
${section('schemas', (schema) => renderSchema(schema))}
</body></html>`;
}

export async function docsRoutes(app: FastifyInstance): Promise<void> {
  // Read and rendered once, on first use: the file does not change while the API runs (and the
  // YAML parser is loaded only then, not in every API process at start-up).
  let docs: Promise<{ yaml: string; html: string }> | undefined;
  const load = () =>
    (docs ??= Promise.all([readFile(OPENAPI_PATH, 'utf8'), import('yaml')])
      .then(([yaml, { parse }]) => ({ yaml, html: renderDocs(parse(yaml) as JsonObject) }))
      .catch((error: unknown) => {
        docs = undefined; // try again next time
        throw error;
      }));
  app.get('/openapi.yaml', { config: { access: 'public' } }, async (_request, reply) => reply.type('application/yaml; charset=utf-8').send((await load()).yaml));
  app.get('/docs', { config: { access: 'public' } }, async (_request, reply) => reply.type('text/html; charset=utf-8').send((await load()).html));
}
