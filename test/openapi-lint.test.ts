// openapi.yaml must lint clean under Redocly CLI (a devDependency) with its
// recommended rules (redocly.yaml): no errors and no warnings. Together with
// test/openapi-contract.test.ts (routes ↔ document both ways, real responses
// against the schemas) this keeps the document valid and true.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

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
