import * as tf from '@tensorflow/tfjs';
import { createHash } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readFile, readdir, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { Redis } from 'ioredis';
import { FileSystemRegistry } from '../src/registry/filesystem.ts';
import { CorruptArtifactError, CorruptVersionError, InvalidModelError, InvalidVersionError, ModelNotFoundError } from '../src/registry/errors.ts';
import { VERSION_PATTERN } from '../src/registry/version.ts';
import { announceModel, modelsChannel, subscribeToModels, type ModelAnnouncement } from '../src/registry/announcements.ts';
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
    const prefix = `test-announce-${process.pid}`;
    const subscription = await subscribeToModels({ redisUrl: inject('redisUrl'), prefix }, (announcement) => received.push(announcement));
    try {
      await redis.publish(modelsChannel(prefix), 'not json');
      await redis.publish(modelsChannel(prefix), JSON.stringify({ type: 'renamed', version: 'v0001-abcdef' }));
      await announceModel(redis, prefix, { type: 'published', version: 'v0001-abcdef' });
      await announceModel(redis, prefix, { type: 'promoted', version: 'v0001-abcdef' });
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

describe('named models and the promotion policy', () => {
  const withAccuracy = (testAccuracy: number, overrides: Record<string, unknown> = {}) => trainingMetadata({ testAccuracy, ...overrides });

  it('keeps one default per name: a fashion-mnist version never touches mnist\'s default', async () => {
    const digits = await registry.publish(await trainingOutput('d', withAccuracy(0.9)));
    const fashion = await registry.publish(
      await trainingOutput('f', withAccuracy(0.8, { dataset: 'fashion-mnist', recipe: { ...(trainingMetadata().recipe as object), dataset: 'fashion-mnist' } })),
    );
    expect(fashion).toMatchObject({ model: 'fashion-mnist', latest: true });
    expect((await registry.latest())?.version).toBe(digits.version);
    expect((await registry.defaultVersion('fashion-mnist'))?.version).toBe(fashion.version);
    expect(await registry.models()).toEqual([
      { name: 'fashion-mnist', defaultVersion: fashion.version, versions: 1 },
      { name: 'mnist', defaultVersion: digits.version, versions: 1 },
    ]);
    expect((await registry.list('mnist')).map((m) => m.version)).toEqual([digits.version]);
    await expect(registry.getVersion('mnist', fashion.version)).rejects.toThrow(/belongs to model "fashion-mnist"/);
    await expect(registry.getVersion('nope', fashion.version)).rejects.toThrow(/belongs to model/);
    await expect(registry.getVersion('nope', 'v0099-abcdef')).rejects.toThrow(/model "nope" does not exist/);
  });

  it('if-better keeps a better default and says why; always and never do what they say; minAccuracy refuses', async () => {
    const good = await registry.publish(await trainingOutput('good', withAccuracy(0.98)));
    const worse = await registry.publish(await trainingOutput('worse', withAccuracy(0.46)));
    expect(worse).toMatchObject({ latest: false, promotion: { promoted: false, previous: good.version } });
    expect(worse.promotion.reason).toMatch(/test accuracy 0.46 is below the default v0001-\w+'s 0.98/);
    expect((await registry.latest())?.version).toBe(good.version);

    const equal = await registry.publish(await trainingOutput('equal', withAccuracy(0.98)));
    expect(equal.promotion).toMatchObject({ promoted: true, previous: good.version });

    const never = await registry.publish(await trainingOutput('never', withAccuracy(0.99)), {}, { promote: 'never' });
    expect(never.promotion).toMatchObject({ promoted: false, reason: expect.stringMatching(/"never"/) });
    const forced = await registry.publish(await trainingOutput('forced', withAccuracy(0.1)), {}, { promote: 'always' });
    expect(forced.promotion.promoted).toBe(true);
    const low = await registry.publish(await trainingOutput('low', withAccuracy(0.99)), {}, { minAccuracy: 0.995 });
    expect(low.promotion).toMatchObject({ promoted: false, reason: expect.stringMatching(/below the job's minAccuracy 0.995/) });
    expect((await registry.latest())?.version).toBe(forced.version);
  });

  it('if-better only compares versions tested on the same test set', async () => {
    const digits = await registry.publish(await trainingOutput('a', withAccuracy(0.5)), { model: 'shared' });
    const fashionRecipe = { ...(trainingMetadata().recipe as object), dataset: 'fashion-mnist' };
    const fashion = await registry.publish(await trainingOutput('bb', withAccuracy(0.9, { dataset: 'fashion-mnist', recipe: fashionRecipe })), { model: 'shared' });
    expect(fashion.promotion).toMatchObject({ promoted: false, reason: expect.stringMatching(/tested on mnist, this version on fashion-mnist/) });
    expect((await registry.defaultVersion('shared'))?.version).toBe(digits.version);
  });

  it('a manual promotion is never undone by a worse version', async () => {
    const best = await registry.publish(await trainingOutput('a', withAccuracy(0.5)));
    await registry.publish(await trainingOutput('bb', withAccuracy(0.99)));
    const manual = await registry.publish(await trainingOutput('ccc', withAccuracy(0.97)), {}, { promote: 'never' });
    await registry.promote(manual.version);
    const next = await registry.publish(await trainingOutput('dddd', withAccuracy(0.9)));
    expect(next.promotion.promoted).toBe(false);
    expect((await registry.latest())?.version).toBe(manual.version);
    expect(best.version).not.toBe(manual.version);
  });

  it('refuses to promote a version that fails verification, and leaves the default alone', async () => {
    const first = await registry.publish(await trainingOutput('a'));
    const second = await registry.publish(await trainingOutput('bb'), {}, { promote: 'never' });
    await expect(registry.promote(second.version, { verify: async () => Promise.reject(new Error('forward pass gave NaN')) })).rejects.toThrow(
      /cannot be promoted: forward pass gave NaN/,
    );
    const failed = await registry.publish(await trainingOutput('ccc'), {}, { verify: async () => Promise.reject(new Error('does not load')) });
    expect(failed.promotion).toMatchObject({ promoted: false, reason: expect.stringMatching(/failed verification: does not load/) });
    expect((await registry.latest())?.version).toBe(first.version);
  });
});

describe('artifact integrity', () => {
  it('records a SHA-256 per artifact; a truncated or altered artifact is refused on read and on promote', async () => {
    const first = await registry.publish(await trainingOutput('a'));
    const second = await registry.publish(await trainingOutput('bb'), {}, { promote: 'never' });
    const weights = await readFile(join(root, 'bb', 'weights.bin'));
    expect(second.artifacts?.['weights.bin']).toEqual({ sha256: createHash('sha256').update(weights).digest('hex'), bytes: weights.byteLength });

    const path = registry.artifactPath(second.version, 'weights.bin');
    await chmod(path, 0o644);
    await truncate(path, 8);
    await expect(registry.readArtifact(second.version, 'weights.bin')).rejects.toThrow(CorruptArtifactError);
    await expect(registry.promote(second.version)).rejects.toThrow(/cannot be promoted: .*weights.bin has 8 bytes, 60 were published/);

    // Same size, one bit flipped: only the hash can tell.
    const flipped = Buffer.from(weights);
    flipped[0]! ^= 1;
    await writeFile(path, flipped);
    await expect(registry.promote(second.version)).rejects.toThrow(/weights.bin SHA-256 is [0-9a-f]{64}, [0-9a-f]{64} was published/);
    expect((await registry.latest())?.version).toBe(first.version);
  });
});

describe('exactly-once publish per job', () => {
  it('a second publish for the same job returns the version it made, also when two race', async () => {
    const first = await registry.publish(await trainingOutput('a'), { jobId: 'job-1' });
    const again = await registry.publish(await trainingOutput('bb'), { jobId: 'job-1' });
    expect(again).toMatchObject({ version: first.version, reused: true });
    const racing = await Promise.all(['c', 'dd', 'eee'].map(async (name) => registry.publish(await trainingOutput(name), { jobId: 'job-2' })));
    expect(new Set(racing.map((r) => r.version)).size).toBe(1);
    expect(racing.filter((r) => !r.reused)).toHaveLength(1);
    expect(await registry.list()).toHaveLength(2);
    expect((await registry.findByJob('job-2'))?.version).toBe(racing[0]!.version);
    expect(await registry.findByJob('job-3')).toBeUndefined();
  });

  it('completes the version a crashed publish had recorded for the job, under the same id', async () => {
    // A crash after the job's version id was recorded but before the version was renamed into place.
    await mkdir(join(modelDir, '.jobs'), { recursive: true });
    await writeFile(join(modelDir, '.jobs', createHash('sha256').update('job-9').digest('hex')), 'v0007-abcdef\n');
    const published = await registry.publish(await trainingOutput('a'), { jobId: 'job-9' });
    expect(published).toMatchObject({ version: 'v0007-abcdef', reused: false });
    expect((await registry.list()).map((m) => m.version)).toEqual(['v0007-abcdef']);
  });

  it('deletes a version that is not a default, and a retried job never re-creates it', async () => {
    const kept = await registry.publish(await trainingOutput('a'), { jobId: 'job-a' });
    const gone = await registry.publish(await trainingOutput('bb'), { jobId: 'job-b' }, { promote: 'never' });
    await expect(registry.delete(kept.version)).rejects.toThrow(/is the default of model "mnist"/);
    await registry.delete(gone.version);
    expect((await registry.list()).map((m) => m.version)).toEqual([kept.version]);
    await expect(registry.get(gone.version)).rejects.toThrow(ModelNotFoundError);
    await expect(registry.publish(await trainingOutput('ccc'), { jobId: 'job-b' })).rejects.toThrow(/has since been deleted/);
  });
});
