// The API's main thread never loads tfjs while inference threads run the forward passes:
// models are folded from their files in plain arithmetic (src/serving/fold.ts), which keeps
// tfjs and a wasm engine (about 30 MB of RSS; bench/api-rss.ts) out of it. Checked in a child
// process (this test process has tfjs loaded for its fixtures), after a real prediction.
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
  it('loads no tfjs package when inference threads serve (nor sharp for a plain PNG), and does load tfjs when it serves itself', async () => {
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
    expect(local.packages).toContain('@tensorflow/tfjs-core');
    await rm(root, { recursive: true, force: true });
  });
});
