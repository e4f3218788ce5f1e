// Same seed, same weights, whatever the thread count: a job resumed on a worker with more
// cores, or a run repeated on another machine, continues the same run. The wasm thread
// pool is fixed at start-up, so each thread count trains in its own process.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeIdx } from '../src/data/idx.ts';
import { mulberry32 } from '../src/lib/random.ts';
import { REPO_ROOT } from './helpers/jobs.ts';

const execFileAsync = promisify(execFile);
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'determinism-'));
  // Varied pixels (unlike a flat image, every partial sum differs), a label cue in the mean.
  const random = mulberry32(17);
  for (const [prefix, count] of [['train', 768], ['t10k', 64]] as const) {
    const labels = new Uint8Array(count).map((_, i) => (i * 7) % 10);
    const pixels = new Uint8Array(count * 784).map((_, p) => Math.min(255, Math.floor(random() * 120 + labels[Math.floor(p / 784)]! * 13)));
    await writeIdx(join(dir, `${prefix}-images-idx3-ubyte.gz`), { kind: 'images', pixels }, { gzip: true });
    await writeIdx(join(dir, `${prefix}-labels-idx1-ubyte.gz`), { kind: 'labels', labels }, { gzip: true });
  }
});
afterAll(() => rm(dir, { recursive: true, force: true }));

async function trainOn(threads: number, extra: string[] = []): Promise<{ weights: Buffer; engine: string }> {
  const out = join(dir, `run-${threads}${extra.join('')}`);
  const { stdout } = await execFileAsync(
    process.execPath,
    [join(REPO_ROOT, 'bin', 'digits.mjs'), 'train', '--data-dir', dir, '--epochs', '2', '--seed', '5', '--engine', 'wasm', '--json', '--out', out, ...extra],
    { env: { ...process.env, WASM_THREADS: String(threads) }, timeout: 120_000 },
  );
  const last = JSON.parse(stdout.trim().split('\n').at(-1)!);
  return { weights: await readFile(join(out, 'model', 'weights.bin')), engine: last.engine };
}

describe('determinism across thread counts', () => {
  it('2 epochs on 1, 2 and 3 wasm threads end with bit-identical weights', { timeout: 300_000 }, async () => {
    const one = await trainOn(1);
    const two = await trainOn(2);
    const three = await trainOn(3);
    expect([one.engine, two.engine, three.engine]).toEqual(['wasm-simd', 'wasm-simd-mt', 'wasm-simd-mt']);
    expect(two.weights.equals(one.weights), '2 threads vs 1').toBe(true);
    expect(three.weights.equals(one.weights), '3 threads vs 1').toBe(true);
  });

  it.each(['seed', 'compact'])('the fast recipe (schedule, augmentation) with the %s architecture: 1 and 2 threads bit-identical', { timeout: 300_000 }, async (architecture) => {
    const extra = ['--recipe', 'fast', '--architecture', architecture];
    const one = await trainOn(1, extra);
    const two = await trainOn(2, extra);
    expect(two.weights.equals(one.weights), '2 threads vs 1').toBe(true);
  });
});
