// Reproduction 5 of issue 10, over real HTTP with real Redis: a corrupt version
// is refused on promote (422, the default stays); a default that cannot be
// loaded leaves the running API on its last good model, saying so in /readyz;
// after a restart with no good model, /readyz is 503 and predict's 503 names the
// cause instead of "no model has been published yet".
import { chmod, readFile, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { inject } from 'vitest';
import { Redis } from 'ioredis';
import type { ModelVersion } from '../src/registry/types.ts';
import { getJson, makeDirs, postJson, removeTempDirs, startTestApi, waitFor, writeTinyMnist, type TestApi, type TestDirs } from './helpers/jobs.ts';
import { postPredict, seedNetOutput, strokePixels } from './helpers/serving.ts';

const PREFIX = `test-integrity-${process.pid}`;
let dirs: TestDirs;
let api: TestApi;

const start = () =>
  startTestApi({ redisUrl: inject('redisUrl'), prefix: PREFIX, dirs, env: { REDIS_URL: inject('redisUrl'), MODEL_RECHECK_MS: '1000' } });

beforeAll(async () => {
  dirs = await makeDirs(await writeTinyMnist(16, 16));
  api = await start();
});

afterAll(async () => {
  await api?.close();
  const redis = new Redis(inject('redisUrl'));
  const keys = await redis.keys(`${PREFIX}:*`);
  if (keys.length > 0) await redis.del(...keys);
  await redis.quit();
  await removeTempDirs();
});

const body = JSON.stringify({ pixels: Array.from(strokePixels(4)) });
const predict = () => postPredict(`${api.url}/v1/predict`, body, 'application/json');
async function corrupt(version: ModelVersion, how: 'truncate' | 'flip'): Promise<void> {
  const path = api.registry.artifactPath(version.version, 'weights.bin');
  await chmod(path, 0o644);
  if (how === 'truncate') return truncate(path, 8);
  const bytes = await readFile(path);
  bytes[100]! ^= 0x40;
  await writeFile(path, bytes);
}

it('refuses to promote a version whose weights were truncated (422), and keeps serving the default', async () => {
  const good = await api.registry.publish(await seedNetOutput(51));
  await waitFor('the good model to be served', async () => (await predict()).headers.get('x-model-version') === good.version);
  const bad = await api.registry.publish(await seedNetOutput(52), {}, { promote: 'never' });
  await corrupt(bad, 'truncate');

  const refused = await postJson(`${api.url}/v1/models/mnist/versions/${bad.version}/promote`);
  expect(refused.status).toBe(422);
  expect(refused.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(refused.body.detail).toMatch(new RegExp(`${bad.version} cannot be promoted: .*weights.bin has 8 bytes`));
  const legacy = await postJson(`${api.url}/v1/models/${bad.version}/promote`);
  expect(legacy.status).toBe(422);
  expect((await getJson(`${api.url}/v1/models/mnist`)).body.defaultVersion).toBe(good.version);
  expect((await predict()).headers.get('x-model-version')).toBe(good.version);
  // Its artifact is not served either: the bytes no longer match what was published.
  expect((await fetch(`${api.url}/v1/models/mnist/versions/${bad.version}/weights.bin`)).status).toBe(500);
});

it('keeps the last good model when the default cannot be loaded; after a restart /readyz and predict say why', async () => {
  const current = (await api.registry.defaultVersion('mnist'))!;
  // A valid version promoted properly, whose weights are then damaged on disk (a bit flipped, same size).
  const next = await api.registry.publish(await seedNetOutput(53), {}, { promote: 'never' });
  await corrupt(next, 'flip');
  // The pointer moved by something that did not verify (e.g. a hand edit, or an older release).
  await writeFile(join(dirs.modelDir, 'defaults', 'mnist'), `${next.version}\n`);

  const ready = await waitFor('the failed load to show in /readyz', async () => {
    const res = await getJson(`${api.url}/readyz`);
    return res.body.models?.[0]?.problem ? res : undefined;
  });
  expect(ready.status).toBe(200); // still serving a good model
  expect(ready.body.models[0]).toMatchObject({ name: 'mnist', defaultVersion: next.version, servedVersion: current.version });
  expect(ready.body.models[0].problem).toMatch(new RegExp(`default version ${next.version} cannot be loaded .*SHA-256.*still serving ${current.version}`));
  expect((await predict()).headers.get('x-model-version')).toBe(current.version);

  await api.close();
  api = await start();
  const unready = await getJson(`${api.url}/readyz`);
  expect(unready.status).toBe(503);
  expect(unready.body.detail).toMatch(new RegExp(`model "mnist": its default version ${next.version} cannot be loaded: .*weights.bin SHA-256`));
  const refused = await predict();
  expect(refused.status).toBe(503);
  const problem = refused.body;
  expect(problem.detail).toMatch(new RegExp(`model "mnist" cannot be served: its default version ${next.version} cannot be loaded`));
  expect(problem.detail).not.toMatch(/no model has been published/);

  // Promoting a good version by hand repairs it.
  const repaired = await postJson(`${api.url}/v1/models/mnist/versions/${current.version}/promote`);
  expect(repaired.status).toBe(200);
  await waitFor('the repaired default to be served', async () => (await predict()).headers.get('x-model-version') === current.version);
  expect((await getJson(`${api.url}/readyz`)).status).toBe(200);
});
