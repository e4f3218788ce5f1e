// openapi.yaml must lint clean under Redocly CLI (a devDependency) with its
// recommended rules (redocly.yaml): no errors and no warnings. Together with
// test/openapi-contract.test.ts (routes ↔ document both ways, real responses
// against the schemas) this keeps the document valid and true. Every operation's
// success responses carry an example (media type or schema), and each example
// validates against its schema.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { HTTP_METHODS, spec, validatorAt } from './helpers/openapi.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const REDOCLY = fileURLToPath(new URL('../node_modules/.bin/redocly', import.meta.url));

interface LintProblem {
  ruleId: string;
  severity: 'error' | 'warn';
  message: string;
  location: { pointer?: string }[];
}

describe('openapi.yaml', () => {
  it('passes `redocly lint` with no errors and no warnings', async () => {
    const { stdout } = await promisify(execFile)(REDOCLY, ['lint', 'openapi.yaml', '--format=json'], {
      cwd: ROOT,
      // No telemetry or update check: the tests run offline.
      env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true', NO_COLOR: '1' },
      maxBuffer: 16 * 1024 * 1024,
    }).catch((error: { stdout?: string; message: string }) => {
      // Exit code 1 means errors were found; the JSON report is still on stdout.
      if (error.stdout) return { stdout: error.stdout };
      throw error;
    });
    const report = JSON.parse(stdout) as { totals: { errors: number; warnings: number }; problems: LintProblem[] };
    const problems = report.problems.map((p) => `${p.severity} ${p.ruleId} at ${p.location[0]?.pointer ?? '?'}: ${p.message}`);
    expect(problems).toEqual([]);
    expect(report.totals).toMatchObject({ errors: 0, warnings: 0 });
  }, 60_000);
});

type Node = Record<string, unknown>;
const BINARY = /^(application\/octet-stream|image\/)/;

/** Follows a local $ref (`#/components/...`), returning the node and its JSON pointer segments. */
function resolve(node: Node, segments: string[]): [Node, string[]] {
  if (typeof node.$ref !== 'string') return [node, segments];
  const target = node.$ref.replace(/^#\//, '').split('/');
  let value: unknown = spec;
  for (const segment of target) value = (value as Node)[segment];
  return resolve(value as Node, target);
}

describe('openapi.yaml examples', () => {
  it('every success response of every operation has an example, and every example validates', () => {
    const missing: string[] = [];
    const invalid: string[] = [];
    const checkExample = (where: string, schemaAt: string[], value: unknown) => {
      const validate = validatorAt(schemaAt);
      if (!validate(value)) invalid.push(`${where}: ${JSON.stringify(validate.errors?.slice(0, 2))}`);
    };
    for (const [path, item] of Object.entries(spec.paths)) {
      for (const method of HTTP_METHODS) {
        const operation = item[method] as unknown as { responses: Record<string, Node> } | undefined;
        if (!operation) continue;
        for (const [status, reference] of Object.entries(operation.responses)) {
          if (!status.startsWith('2')) continue;
          const [response, at] = resolve(reference, ['paths', path, method, 'responses', status]);
          for (const [type, media] of Object.entries((response.content ?? {}) as Record<string, Node>)) {
            if (BINARY.test(type)) continue;
            const where = `${method.toUpperCase()} ${path} ${status} ${type}`;
            const schemaAt = [...at, 'content', type, 'schema'];
            const [schema] = resolve(media.schema as Node, schemaAt);
            const examples = [
              ...('example' in media ? [media.example] : []),
              ...Object.values((media.examples ?? {}) as Record<string, { value: unknown }>).map((e) => e.value),
              ...((schema.examples as unknown[] | undefined) ?? []),
            ];
            if (examples.length === 0) missing.push(where);
            if (type.endsWith('json')) examples.forEach((example, i) => checkExample(`${where} example ${i}`, schemaAt, example));
          }
        }
      }
    }
    for (const [name, schema] of Object.entries(spec.components.schemas as Record<string, Node>)) {
      ((schema.examples as unknown[] | undefined) ?? []).forEach((example, i) => checkExample(`schema ${name} example ${i}`, ['components', 'schemas', name], example));
    }
    expect(missing).toEqual([]);
    expect(invalid).toEqual([]);
  });
});
