// The CLI's recipe and architecture flags, through the real binary.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from './helpers/jobs.ts';

const execFileAsync = promisify(execFile);
const digits = (...args: string[]) => execFileAsync(process.execPath, [join(REPO_ROOT, 'bin', 'digits.mjs'), ...args], { timeout: 60_000 });

describe('digits CLI: recipes and architectures', () => {
  it('summary --architecture compact --json reports the compact model\'s parameters', async () => {
    const { stdout } = await digits('summary', '--architecture', 'compact', '--json');
    const summary = JSON.parse(stdout);
    expect(summary.trainableParams).toBe(7568);
    expect(summary.trainableParams).toBeLessThanOrEqual(8000);
    expect(JSON.parse((await digits('summary', '--json')).stdout).trainableParams).toBe(14320);
  });

  it.each([
    [['train', '--recipe', 'slow'], /--recipe must be one of seed, fast/],
    [['train', '--architecture', 'huge'], /--architecture must be one of seed, compact/],
    [['summary', '--architecture', 'huge'], /--architecture must be one of seed, compact/],
  ])('%j is a usage error naming the flag', async (args, message) => {
    const failure = await digits(...args).then(() => undefined, (error: { code: number; stderr: string }) => error);
    expect(failure?.code).toBe(1); // what every usage error of the CLI exits with (src/cli/main.ts)
    expect(failure?.stderr).toMatch(message);
  });

  it('train --help lists the presets', async () => {
    const { stdout } = await digits('train', '--help');
    expect(stdout).toMatch(/--recipe seed\|fast/);
    expect(stdout).toMatch(/--architecture seed\|compact/);
  });
});
