import * as tf from '@tensorflow/tfjs';
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { Redis } from 'ioredis';
import { FileSystemRegistry } from '../src/registry/filesystem.ts';
import { CorruptVersionError, InvalidModelError, InvalidVersionError, ModelNotFoundError } from '../src/registry/errors.ts';
import { VERSION_PATTERN } from '../src/registry/version.ts';
import { MODELS_CHANNEL, announceModel, subscribeToModels, type ModelAnnouncement } from '../src/registry/announcements.ts';
import { tinyModel, trainingMetadata, writeTrainingOutput } from './helpers/model-fixture.ts';

let root: string;
let modelDir: string;
let registry: FileSystemRegistry;

beforeAll(async () => {
  await tf.setBackend('cpu');
});

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'registry-test-'));
  modelDir = join(root, 'models');
  registry = new FileSystemRegistry(modelDir);
});

afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

/** A fresh training output directory with its own model. */
async function trainingOutput(name: string, metadata = trainingMetadata()): Promise<string> {
  const dir = join(root, name);
  return writeTrainingOutput(dir, tinyModel(name.length), metadata);
}

describe('publish', () => {
  it('copies the artifacts into a new version with merged metadata and moves latest', async () => {
    const source = await trainingOutput('run-a');
    const published = await registry.publish(source, { jobId: 'job-42' });

    expect(published.version).toMatch(VERSION_PATTERN);
    expect(published).toMatchObject({ jobId: 'job-42', dataset: 'mnist', trainableParams: 15, engine: 'cpu', latest: true });
    // testAccuracy is derived from the last epoch when training did not record it.
    const lastEpoch = (trainingMetadata().metrics as { testAccuracy: number }[]).at(-1)!;
    expect(published.testAccuracy).toBe(lastEpoch.testAccuracy);
    expect(new Date(published.created).toISOString()).toBe(published.created);

    const versionDir = join(modelDir, 'versions', published.version);
    expect((await readdir(versionDir)).sort()).toEqual(['metadata.json', 'model.json', 'weights.bin']);
    for (const name of ['model.json', 'weights.bin'] as const) {
      expect(await readFile(join(versionDir, name))).toEqual(await readFile(join(source, name)));
      expect(await registry.readArtifact(published.version, name)).toEqual(await readFile(join(source, name)));
    }
    const onDisk = JSON.parse(await readFile(join(versionDir, 'metadata.json'), 'utf8'));
    expect(onDisk).toEqual({ ...published, latest: undefined, reused: undefined, promotion: undefined });
    // Immutable: the files are read-only.
    expect((await stat(join(versionDir, 'weights.bin'))).mode & 0o222).toBe(0);
    // Its name (the data set's) has it as default: the first version of a name is promoted.
    expect(published).toMatchObject({ model: 'mnist', reused: false, promotion: { promoted: true, previous: null } });
    expect((await readFile(join(modelDir, 'defaults', 'mnist'), 'utf8')).trim()).toBe(published.version);
  });

  it('numbers versions in publish order, also when publishes race', async () => {
    const sources = await Promise.all(['r1', 'r22', 'r333', 'r4444'].map((name) => trainingOutput(name)));
    const published = await Promise.all(sources.map((source) => registry.publish(source)));
    const numbers = published.map((p) => Number(VERSION_PATTERN.exec(p.version)![1])).sort();
    expect(numbers).toEqual([1, 2, 3, 4]);

    const listed = await registry.list();
    expect(listed.map((m) => m.version)).toEqual([...published].sort((a, b) => (a.version < b.version ? 1 : -1)).map((p) => p.version));
    expect(listed.filter((m) => m.latest)).toHaveLength(1);
  });

  it('rejects an unusable source without leaving a version, a temp directory or a claimed number behind', async () => {
    const noWeights = await trainingOutput('no-weights');
    await rm(join(noWeights, 'weights.bin'));
    await expect(registry.publish(noWeights)).rejects.toThrow(InvalidModelError);

    const truncated = await trainingOutput('truncated');
    await writeFile(join(truncated, 'weights.bin'), Buffer.alloc(8));
    await expect(registry.publish(truncated)).rejects.toThrow(/weightsManifest describes 60 bytes but weights.bin has 8/);

    const badMetadata = await trainingOutput('bad-meta', trainingMetadata({ trainableParams: 'many' }));
    await expect(registry.publish(badMetadata)).rejects.toThrow(/bad-meta\/metadata.json: invalid model metadata: trainableParams/);

    expect(await registry.list()).toEqual([]);
    expect(await registry.latest()).toBeUndefined();
    const leftovers = await readdir(join(modelDir, 'versions')).catch(() => []);
    expect(leftovers).toEqual([]);

    const good = await registry.publish(await trainingOutput('good'));
    expect(good.version).toMatch(/^v0001-/);
  });

  it('ignores half-written temp directories left by a crash', async () => {
    const first = await registry.publish(await trainingOutput('first'));
    await writeFile(join(modelDir, 'versions', `.tmp-v0002-aaaaaa-1234`), 'partial');
    expect((await registry.list()).map((m) => m.version)).toEqual([first.version]);
  });
});

describe('lookup', () => {
  it('gets a version by id or by the latest alias, and 404s unknown ones', async () => {
    await expect(registry.get('latest')).rejects.toThrow(ModelNotFoundError);
    const a = await registry.publish(await trainingOutput('a'));
    const b = await registry.publish(await trainingOutput('bb'));

    expect(await registry.get(a.version)).toMatchObject({ version: a.version, latest: false });
    expect(await registry.get('latest')).toMatchObject({ version: b.version, latest: true });
    await expect(registry.get('v0099-abcdef')).rejects.toThrow(ModelNotFoundError);
    await expect(registry.readArtifact('v0099-abcdef', 'model.json')).rejects.toThrow(ModelNotFoundError);
  });

  it.each(['../latest', '..', 'v0001-abcdef/../../etc', 'v0001', 'V0001-ABCDEF', 'v0001-abcdef ', '', 'v0001-abcdef\0'])(
    'rejects the version id %j before touching the filesystem',
    async (bad) => {
      await expect(registry.get(bad)).rejects.toThrow(InvalidVersionError);
      await expect(registry.promote(bad)).rejects.toThrow(InvalidVersionError);
      await expect(registry.readArtifact(bad, 'weights.bin')).rejects.toThrow(InvalidVersionError);
      expect(() => registry.artifactPath(bad, 'model.json')).toThrow(InvalidVersionError);
    },
  );

  it('reports a damaged metadata.json as a corrupt version naming the file', async () => {
    const published = await registry.publish(await trainingOutput('a'));
    const path = registry.artifactPath(published.version, 'metadata.json');
    await rm(path);
    await writeFile(path, '{"version": "v0001-abcdef"');
    await expect(registry.get(published.version)).rejects.toThrow(CorruptVersionError);
    await expect(registry.list()).rejects.toThrow(`${path}: `);
  });

  it('sees versions published through another instance on the same directory (API and worker)', async () => {
    const worker = new FileSystemRegistry(modelDir);
    const published = await worker.publish(await trainingOutput('elsewhere'));
    expect((await registry.latest())?.version).toBe(published.version);
  });
});

describe('promote', () => {
  it('points latest at any existing version; the next publish moves it again', async () => {
    const a = await registry.publish(await trainingOutput('a'));
    const b = await registry.publish(await trainingOutput('bb'));

    expect(await registry.promote(a.version)).toMatchObject({ version: a.version, latest: true });
    expect((await registry.latest())?.version).toBe(a.version);
    expect((await registry.list()).map((m) => [m.version, m.latest])).toEqual([
      [b.version, false],
      [a.version, true],
    ]);
    await expect(registry.promote('v0042-abcdef')).rejects.toThrow(ModelNotFoundError);
    expect((await registry.latest())?.version).toBe(a.version);

    const c = await registry.publish(await trainingOutput('ccc'));
    expect((await registry.latest())?.version).toBe(c.version);
  });

  it('never falls back to an unvetted version when the default pointer is missing; reads a legacy latest pointer', async () => {
    const a = await registry.publish(await trainingOutput('a'));
    await registry.publish(await trainingOutput('bb'));
    await rm(join(modelDir, 'defaults', 'mnist'));
    expect(await registry.latest()).toBeUndefined();
    await expect(registry.get('latest')).rejects.toThrow(/no default version/);
    // A registry from before named models has only MODEL_DIR/latest: it still names mnist's default.
    await writeFile(join(modelDir, 'latest'), `${a.version}\n`);
    expect((await registry.latest())?.version).toBe(a.version);
  });
});

describe('announcements', () => {
  let redis: Redis;
  beforeAll(() => {
    redis = new Redis(inject('redisUrl'));
  });
  afterAll(async () => {
    await redis.quit();
  });

  it('delivers published and promoted announcements and ignores foreign messages', async () => {
    const received: ModelAnnouncement[] = [];
    const subscription = await subscribeToModels(inject('redisUrl'), (announcement) => received.push(announcement));
    try {
      await redis.publish(MODELS_CHANNEL, 'not json');
      await redis.publish(MODELS_CHANNEL, JSON.stringify({ type: 'renamed', version: 'v0001-abcdef' }));
      await announceModel(redis, { type: 'published', version: 'v0001-abcdef' });
      await announceModel(redis, { type: 'promoted', version: 'v0001-abcdef' });
      await expect.poll(() => received.length).toBe(2);
      expect(received).toEqual([
        { type: 'published', version: 'v0001-abcdef' },
        { type: 'promoted', version: 'v0001-abcdef' },
      ]);
    } finally {
      await subscription.close();
    }
  });
});
