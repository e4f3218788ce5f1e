// Engine selection: forced engines load or fail with EngineUnavailableError, never silently.
import * as tf from '@tensorflow/tfjs';
import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { EngineUnavailableError, engineLabel, initEngine } from '../src/engine/index.ts';

const execFileAsync = promisify(execFile);
const savedEngineEnv = process.env.ENGINE;
afterEach(() => {
  if (savedEngineEnv === undefined) delete process.env.ENGINE;
  else process.env.ENGINE = savedEngineEnv;
});

describe('initEngine', () => {
  it('forces cpu, and returns the same info when asked again', async () => {
    const info = await initEngine('cpu');
    expect(info).toMatchObject({ name: 'cpu', backend: 'cpu', label: 'cpu' });
    expect(tf.getBackend()).toBe('cpu');
    expect(await initEngine('cpu')).toBe(info);
    expect(engineLabel).toBe('cpu');
  });

  it('forces wasm with SIMD and computes on it', async () => {
    const info = await initEngine('wasm');
    expect(info.name).toBe('wasm');
    expect(info.backend).toBe('wasm');
    expect(info.label).toMatch(/^wasm-simd/);
    expect(info.threads).toBeGreaterThanOrEqual(1);
    expect(tf.getBackend()).toBe('wasm');
    expect(await initEngine('wasm')).toBe(info);
    expect(Array.from(tf.add(tf.tensor1d([1, 2]), 3).dataSync())).toEqual([4, 5]);
  });

  const installed = (pkg: string) => {
    try {
      createRequire(import.meta.url).resolve(pkg);
      return true;
    } catch {
      return false;
    }
  };
  const missing = (['gpu', 'node'] as const).filter((name) => !installed(name === 'gpu' ? '@tensorflow/tfjs-node-gpu' : '@tensorflow/tfjs-node'));

  it.skipIf(missing.length === 0).each(missing.length > 0 ? missing : (['gpu'] as const))('forced %s (not installed here) throws EngineUnavailableError naming the package and the fix', async (name) => {
    const error = await initEngine(name).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(EngineUnavailableError);
    expect((error as EngineUnavailableError).engine).toBe(name);
    expect((error as Error).message).toContain(name === 'gpu' ? '@tensorflow/tfjs-node-gpu' : '@tensorflow/tfjs-node');
    expect((error as Error).message).toMatch(/npm install .*ENGINE=wasm/);
  });

  it('reads ENGINE from the environment, and rejects unknown names', async () => {
    process.env.ENGINE = 'cpu';
    expect((await initEngine()).name).toBe('cpu');
    process.env.ENGINE = 'tpu';
    const error = await initEngine().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(EngineUnavailableError);
    expect((error as Error).message).toContain('ENGINE=tpu');
  });

  it('auto, in a fresh process, picks the fastest engine that loads here (wasm: tfjs-node is not installed)', async () => {
    const script = "const { initEngine } = await import('./src/engine/index.ts'); console.log(JSON.stringify(await initEngine()));";
    const env = { ...process.env };
    delete env.ENGINE;
    const { stdout } = await execFileAsync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { env });
    const info = JSON.parse(stdout.trim().split('\n').at(-1)!);
    expect(info.name).toBe('wasm');
    expect(info.label).toMatch(/^wasm-simd/);
  });
});
