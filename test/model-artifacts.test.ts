// The one reader and checker of a model's files (src/model/artifacts.ts), on hand-written
// directories: what the registry, training and serving rely on it to refuse.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  ModelArtifactsError,
  checkModelFiles,
  digestOf,
  digestProblem,
  readMetadataJson,
  readModelDir,
  type WeightSpec,
} from '../src/model/artifacts.ts';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'model-artifacts-test-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const modelJson = (groups: { paths: string[]; weights: WeightSpec[] }[]) => Buffer.from(JSON.stringify({ modelTopology: {}, weightsManifest: groups }));

describe('readModelDir', () => {
  it('reads every weights file the manifest lists, in order, and sizes them by dtype', async () => {
    const weights: WeightSpec[] = [
      { name: 'a', shape: [2, 3], dtype: 'float32' },
      { name: 'b', shape: [4], dtype: 'bool' },
    ];
    await writeFile(join(dir, 'model.json'), modelJson([{ paths: ['./one.bin', 'two.bin'], weights }]));
    await writeFile(join(dir, 'one.bin'), Buffer.alloc(20, 1));
    await writeFile(join(dir, 'two.bin'), Buffer.alloc(8, 2)); // 2×3×4 + 4×1 = 28 bytes
    const files = await readModelDir(dir);
    expect(files.weights).toEqual(Buffer.concat([Buffer.alloc(20, 1), Buffer.alloc(8, 2)]));
    // The registry stores exactly one weights.bin.
    await expect(readModelDir(dir, { singleWeightsFile: true })).rejects.toThrow(/weightsManifest paths must be \["weights.bin"\], got \["\.\/one.bin","two.bin"\]/);
  });

  it('refuses weights whose size the manifest does not describe, and says both numbers', async () => {
    await writeFile(join(dir, 'model.json'), modelJson([{ paths: ['weights.bin'], weights: [{ name: 'k', shape: [3, 5], dtype: 'float32' }] }]));
    await writeFile(join(dir, 'weights.bin'), Buffer.alloc(59));
    const error = await readModelDir(dir).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ModelArtifactsError);
    expect(error).toMatchObject({ path: join(dir, 'model.json'), problem: 'weightsManifest describes 60 bytes but weights.bin has 59' });
  });

  it('names the file that cannot be read or is not a layers model', async () => {
    await expect(readModelDir(dir)).rejects.toThrow(`${join(dir, 'model.json')}: cannot read`);
    await writeFile(join(dir, 'model.json'), '{"modelTopology":');
    await expect(readModelDir(dir)).rejects.toThrow(/model.json: not valid JSON/);
    await writeFile(join(dir, 'model.json'), '{"weightsManifest":[]}');
    await expect(readModelDir(dir)).rejects.toThrow(/model.json: expected a tfjs layers model with modelTopology and weightsManifest/);
    await writeFile(join(dir, 'model.json'), '{"modelTopology":{},"weightsManifest":[{"paths":"weights.bin"}]}');
    await expect(readModelDir(dir)).rejects.toThrow(/each weightsManifest group needs a list of file paths/);
    await writeFile(join(dir, 'model.json'), modelJson([{ paths: ['weights.bin'], weights: [] }]));
    await expect(readModelDir(dir)).rejects.toThrow(`${join(dir, 'weights.bin')}: cannot read`);
  });
});

describe('checkModelFiles', () => {
  it('leaves quantized weights to tfjs, whose sizes differ from the shapes', () => {
    const json = modelJson([{ paths: ['weights.bin'], weights: [{ name: 'k', shape: [10], dtype: 'float32', quantization: { dtype: 'uint8' } }] }]);
    expect(() => checkModelFiles('v/model.json', json, 10)).not.toThrow();
    const plain = modelJson([{ paths: ['weights.bin'], weights: [{ name: 'k', shape: [10], dtype: 'float32' }] }]);
    expect(() => checkModelFiles('v/model.json', plain, 10)).toThrow('v/model.json: weightsManifest describes 40 bytes but weights.bin has 10');
  });
});

describe('digests', () => {
  it('say whether bytes are what was published: size first, then SHA-256', () => {
    const bytes = Buffer.from('weights');
    const recorded = digestOf(bytes);
    expect(digestProblem(bytes, recorded)).toBeUndefined();
    expect(digestProblem(bytes.subarray(1), recorded)).toBe('has 6 bytes, 7 were published');
    expect(digestProblem(Buffer.from('Weights'), recorded)).toMatch(new RegExp(`^SHA-256 is [0-9a-f]{64}, ${recorded.sha256} was published$`));
  });
});

describe('readMetadataJson', () => {
  it('is undefined without a metadata.json (unless required) and refuses one that is not a JSON object', async () => {
    expect(await readMetadataJson(dir)).toBeUndefined();
    await expect(readMetadataJson(dir, { required: true })).rejects.toThrow(`${join(dir, 'metadata.json')}: cannot read`);
    await writeFile(join(dir, 'metadata.json'), '{"dataset":"mnist"}');
    expect(await readMetadataJson(dir)).toEqual({ dataset: 'mnist' });
    await writeFile(join(dir, 'metadata.json'), '[1]');
    await expect(readMetadataJson(dir)).rejects.toThrow(`${join(dir, 'metadata.json')}: expected a JSON object`);
  });
});
