// The API never loads tfjs: models are folded from their files in plain arithmetic
// (src/serving/fold.ts) and computed on by serving's own SIMD kernels (folded-forward.mjs),
// on inference threads or on the event loop, which keeps tfjs and its wasm engine (about
// 30 MB of RSS; bench/api-rss.ts) out of it. Checked in a child process (this test process
// has tfjs loaded for its fixtures), after a real prediction.
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { FileSystemRegistry } from '../src/registry/filesystem.ts';
import { pngOf, publishSeedNet, strokePixels } from './helpers/serving.ts';

const run = promisify(execFile);
const CHILD = join(import.meta.dirname, 'fixtures', 'api-main-thread-modules.ts');

async function childReport(env: Record<string, string>) {
  const { stdout } = await run(process.execPath, [CHILD, (await pngOf(strokePixels(7))).toString('base64')], { env: { ...process.env, ...env }, timeout: 60_000 });
  return JSON.parse(stdout) as { status: number; body: { predictions: { label: number }[] }; packages: string[] };
}

describe('the API main thread', () => {
  it('loads no tfjs package, with inference threads or without them (nor sharp for a plain PNG)', async () => {
    const root = await mkdtemp(join(tmpdir(), 'api-footprint-'));
    const registry = new FileSystemRegistry(join(root, 'models'));
    await publishSeedNet(registry, 3);
    const threaded = await childReport({ MODEL_DIR: registry.root, INFERENCE_THREADS: '1' });
    expect(threaded.status).toBe(200);
    expect(threaded.body.predictions).toHaveLength(1);
    expect(threaded.packages).toContain('fastify'); // the check sees this thread's packages at all
    expect(threaded.packages.filter((name) => name.startsWith('@tensorflow/'))).toEqual([]);
    // Nor sharp (libvips): a 28×28 grayscale PNG takes the fast path, and sharp loads on first need.
    expect(threaded.packages).not.toContain('sharp');
    const local = await childReport({ MODEL_DIR: registry.root, INFERENCE_THREADS: '0' });
    expect(local.status).toBe(200);
    expect(local.body.predictions[0]!.label).toBe(threaded.body.predictions[0]!.label);
    expect(local.packages).toContain('fastify');
    expect(local.packages.filter((name) => name.startsWith('@tensorflow/'))).toEqual([]);
    await rm(root, { recursive: true, force: true });
  });
});
