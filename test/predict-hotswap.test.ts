// Hot-swap under load: clients keep predicting over real HTTP while new versions
// are published and announced on Redis. No request may fail, and no client may
// ever see an older version after a newer one.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { inject } from 'vitest';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileSystemRegistry } from '../src/registry/filesystem.ts';
import { waitFor } from './helpers/jobs.ts';
import { pngOf, postPredict, publishSeedNet, startServingApi, strokePixels, type ServingApi } from './helpers/serving.ts';

let api: ServingApi;
let initialVersion: string;

beforeAll(async () => {
  // Published before the API starts: it must be loaded at start-up.
  const modelDir = join(await mkdtemp(join(tmpdir(), 'hotswap-')), 'models');
  initialVersion = (await publishSeedNet(new FileSystemRegistry(modelDir), 100)).version;
  api = await startServingApi({ redisUrl: inject('redisUrl'), modelDir });
});

afterAll(async () => {
  await api?.close();
});

it('swaps versions under concurrent load with zero failed requests', async () => {
  const ready = await (await fetch(`${api.url}/readyz`)).json();
  expect(ready.model.version).toBe(initialVersion);

  const png = await pngOf(strokePixels(5));
  const failures: string[] = [];
  const seen: string[][] = [];
  let stop = false;
  const client = async (id: number) => {
    seen[id] = [];
    while (!stop) {
      const response = await postPredict(`${api.url}/v1/predict`, new Uint8Array(png), 'image/png');
      if (response.status !== 200) failures.push(`${response.status} ${response.text}`);
      else seen[id]!.push(response.body.model.version);
    }
  };
  const clients = Array.from({ length: 8 }, (_, i) => client(i));

  const published = [initialVersion];
  for (let i = 0; i < 3; i++) {
    const version = (await api.publishAndAnnounce(200 + i)).version;
    published.push(version);
    await waitFor(`requests to be served by ${version}`, async () => seen.some((versions) => versions.at(-1) === version));
  }
  stop = true;
  await Promise.all(clients);

  expect(failures).toEqual([]);
  const all = seen.flat();
  expect(all.length).toBeGreaterThan(published.length * 8);
  for (const version of published) expect(all).toContain(version);
  // Each client saw versions in publish order: a swap is atomic and never goes back.
  for (const versions of seen) {
    const order = versions.map((version) => published.indexOf(version));
    expect(order).toEqual([...order].sort((a, b) => a - b));
  }
});
