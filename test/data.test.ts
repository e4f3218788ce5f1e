import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  ChecksumMismatchError,
  DATASET_SOURCES,
  DatasetFilesError,
  DatasetUnavailableError,
  IDX_FILE_NAMES,
  loadDataset,
} from '../src/data/datasets.ts';
import { normalisePixels as normalise } from '../src/model/spec.ts';
import { encodeIdx, IdxFormatError, readIdxImages, readIdxLabels, writeIdx, type IdxContent } from '../src/data/idx.ts';
import type { LoadDatasetOptions } from '../src/data/types.ts';

const PIXELS = 28 * 28;
const REAL_MNIST_DIR = resolve(fileURLToPath(new URL('..', import.meta.url)), '../shared/data/mnist');
const FASHION_SYSTEM_DIR = '/usr/share/datasets/fashion-mnist';

// Deterministic, varied pixels and labels, so any off-by-one in slicing shows up.
function makePixels(count: number, seed: number): Uint8Array {
  const pixels = new Uint8Array(count * PIXELS);
  for (let i = 0; i < pixels.length; i++) pixels[i] = (i * 31 + seed * 17) % 256;
  return pixels;
}
function makeLabels(count: number, seed: number): Uint8Array {
  return Uint8Array.from({ length: count }, (_, i) => (i * 3 + seed) % 10);
}

interface Files {
  trainImages: IdxContent;
  trainLabels: IdxContent;
  testImages: IdxContent;
  testLabels: IdxContent;
}
function makeFiles(trainCount = 12, testCount = 5): Files {
  return {
    trainImages: { kind: 'images', pixels: makePixels(trainCount, 1) },
    trainLabels: { kind: 'labels', labels: makeLabels(trainCount, 1) },
    testImages: { kind: 'images', pixels: makePixels(testCount, 2) },
    testLabels: { kind: 'labels', labels: makeLabels(testCount, 2) },
  };
}
async function writeDir(dir: string, files: Files, gzip: boolean): Promise<void> {
  for (const [role, content] of Object.entries(files) as [keyof Files, IdxContent][]) {
    const name = IDX_FILE_NAMES[role] + (gzip ? '.gz' : '');
    await writeIdx(join(dir, name), content, { gzip });
  }
}
/** Names in a directory, [] when it does not exist (a failed download may not even create it). */
const filesIn = (dir: string) => readdir(dir).catch(() => [] as string[]);
const pixelsOf = (content: IdxContent) => (content.kind === 'images' ? content.pixels : new Uint8Array());
const labelsOf = (content: IdxContent) => (content.kind === 'labels' ? content.labels : new Uint8Array());

let work: string;
const savedEnv: Record<string, string | undefined> = {};
const ENV_VARS = ['MNIST_DIR', 'FASHION_MNIST_DIR', 'DATA_DIR'];

beforeEach(async () => {
  work = await mkdtemp(join(tmpdir(), 'digits-data-'));
  // The loader reads these; a developer's shell must not change what the tests see.
  for (const name of ENV_VARS) {
    savedEnv[name] = process.env[name];
    delete process.env[name];
  }
});
afterEach(async () => {
  for (const name of ENV_VARS) {
    if (savedEnv[name] === undefined) delete process.env[name];
    else process.env[name] = savedEnv[name];
  }
  await rm(work, { recursive: true, force: true });
});

describe('local directory', () => {
  for (const gzip of [false, true]) {
    it(`loads ${gzip ? 'gzip' : 'raw'} IDX files, normalised with the MNIST constants`, async () => {
      const files = makeFiles(12, 5);
      await writeDir(work, files, gzip);
      const data = await loadDataset({ dataset: 'mnist', dataDir: work });

      expect(data.name).toBe('mnist');
      expect(data.source).toBe(work);
      expect([data.mean, data.std]).toEqual([0.1307, 0.3081]);
      expect(data.train.count).toBe(12);
      expect(data.test.count).toBe(5);
      expect(data.train.images).toHaveLength(12 * PIXELS);
      expect(Array.from(data.train.labels)).toEqual(Array.from(labelsOf(files.trainLabels)));
      expect(Array.from(data.test.labels)).toEqual(Array.from(labelsOf(files.testLabels)));
      const raw = pixelsOf(files.testImages);
      for (const i of [0, 1, 783, 784, raw.length - 1]) {
        expect(data.test.images[i]).toBeCloseTo((raw[i]! / 255 - 0.1307) / 0.3081, 5);
      }
    });
  }

  it('detects gzip by its magic bytes, not by the file name', async () => {
    const files = makeFiles(3, 2);
    await writeDir(work, files, false);
    // A raw file named .gz next to nothing else: still read as raw.
    const name = IDX_FILE_NAMES.trainImages;
    await writeFile(join(work, `${name}.gz`), await readFile(join(work, name)));
    await rm(join(work, name));
    const data = await loadDataset({ dataset: 'mnist', dataDir: work });
    expect(data.train.count).toBe(3);
  });

  it('uses the Fashion-MNIST constants for fashion-mnist', async () => {
    const files = makeFiles(4, 2);
    await writeDir(work, files, true);
    const data = await loadDataset({ dataset: 'fashion-mnist', dataDir: work });
    expect([data.mean, data.std]).toEqual([0.286, 0.353]);
    expect(data.train.images[5]).toBeCloseTo((pixelsOf(files.trainImages)[5]! / 255 - 0.286) / 0.353, 5);
  });

  it('takes the directory from MNIST_DIR when no dataDir is given', async () => {
    await writeDir(work, makeFiles(7, 3), true);
    process.env.MNIST_DIR = work;
    const data = await loadDataset({ dataset: 'mnist' });
    expect(data.source).toBe(work);
    expect(data.train.count).toBe(7);
  });

  it('limit and testLimit keep the first N examples', async () => {
    const files = makeFiles(12, 5);
    await writeDir(work, files, false);
    const data = await loadDataset({ dataset: 'mnist', dataDir: work, limit: 4, testLimit: 2 });
    expect(data.train.count).toBe(4);
    expect(data.test.count).toBe(2);
    expect(Array.from(data.train.labels)).toEqual(Array.from(labelsOf(files.trainLabels).slice(0, 4)));
    const expected = normalise(pixelsOf(files.trainImages).subarray(0, 4 * PIXELS), { mean: 0.1307, std: 0.3081 });
    expect(data.train.images).toEqual(expected);

    const all = await loadDataset({ dataset: 'mnist', dataDir: work, limit: 1000 });
    expect(all.train.count).toBe(12);
    await expect(loadDataset({ dataset: 'mnist', dataDir: work, limit: 0 })).rejects.toThrow(/limit must be a positive integer/);
  });

  it('normalise maps 0 and 255 through (x/255 - mean) / std', () => {
    const out = normalise(Uint8Array.from([0, 255, 128]), { mean: 0.5, std: 0.25 });
    expect(out[0]).toBeCloseTo(-2, 6);
    expect(out[1]).toBeCloseTo(2, 6);
    expect(out[2]).toBeCloseTo((128 / 255 - 0.5) / 0.25, 6);
  });
});

describe('validation', () => {
  async function expectRejection(role: keyof Files, content: IdxContent | Buffer, pattern: RegExp, errorClass: new (...args: never[]) => Error = IdxFormatError) {
    const files = makeFiles(6, 3);
    await writeDir(work, files, true);
    const file = join(work, `${IDX_FILE_NAMES[role]}.gz`);
    await writeFile(file, gzipSync(Buffer.isBuffer(content) ? content : encodeIdx(content)));
    const error = await loadDataset({ dataset: 'mnist', dataDir: work }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(errorClass);
    expect((error as Error).message).toContain(file);
    expect((error as Error).message).toMatch(pattern);
  }

  it('rejects a bad magic number in an images file', async () => {
    await expectRejection('trainImages', { kind: 'images', pixels: makePixels(6, 1), magic: 0x00000801 }, /bad magic number 0x00000801, expected 0x00000803/);
  });
  it('rejects a bad magic number in a labels file', async () => {
    await expectRejection('testLabels', { kind: 'labels', labels: makeLabels(3, 2), magic: 0x00000803 }, /bad magic number 0x00000803, expected 0x00000801/);
  });
  it('rejects a header count larger than the data (truncated)', async () => {
    await expectRejection('trainImages', { kind: 'images', pixels: makePixels(6, 1), count: 7 }, /truncated: header declares 7 images/);
  });
  it('rejects a header count smaller than the data (trailing bytes)', async () => {
    await expectRejection('trainLabels', { kind: 'labels', labels: makeLabels(6, 1), count: 5 }, /1 unexpected bytes after 5 labels/);
  });
  it('rejects images that are not 28×28', async () => {
    await expectRejection('testImages', { kind: 'images', pixels: new Uint8Array(3 * 27 * 28), rows: 27, cols: 28 }, /images are 27×28, expected 28×28/);
  });
  it('rejects a truncated file', async () => {
    const full = encodeIdx({ kind: 'images', pixels: makePixels(3, 2) });
    await expectRejection('testImages', full.subarray(0, full.length - 100), /truncated/);
  });
  it('rejects a file shorter than the header', async () => {
    await expectRejection('testLabels', Buffer.from([0, 0, 8]), /too short for an IDX labels header/);
  });
  it('rejects label 10', async () => {
    const labels = makeLabels(6, 1);
    labels[4] = 10;
    await expectRejection('trainLabels', { kind: 'labels', labels }, /label 10 at index 4 is outside 0–9/);
  });
  it('rejects train images and labels with different counts', async () => {
    await expectRejection('trainLabels', { kind: 'labels', labels: makeLabels(5, 1) }, /has 6 images but .* has 5 labels/, DatasetFilesError);
  });
  it('rejects corrupt gzip data', async () => {
    const file = join(work, `${IDX_FILE_NAMES.trainImages}.gz`);
    await writeDir(work, makeFiles(2, 2), true);
    await writeFile(file, Buffer.from([0x1f, 0x8b, 1, 2, 3, 4, 5]));
    await expect(readIdxImages(file)).rejects.toThrow(IdxFormatError);
    await expect(readIdxImages(file)).rejects.toThrow(/corrupt gzip data/);
  });
  it('names the missing file or directory', async () => {
    const missing = join(work, 'nope');
    await expect(loadDataset({ dataset: 'mnist', dataDir: missing })).rejects.toThrow(`${missing}: data directory does not exist`);
    await writeDir(work, makeFiles(2, 2), true);
    await rm(join(work, `${IDX_FILE_NAMES.testLabels}.gz`));
    const error = await loadDataset({ dataset: 'mnist', dataDir: work }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DatasetFilesError);
    expect((error as Error).message).toContain('missing t10k-labels-idx1-ubyte.gz');
  });
  it('reads labels written by writeIdx back unchanged', async () => {
    const file = join(work, 'labels.gz');
    await writeIdx(file, { kind: 'labels', labels: makeLabels(9, 4) }, { gzip: true });
    expect(Array.from(await readIdxLabels(file))).toEqual(Array.from(makeLabels(9, 4)));
  });
});

describe('download', () => {
  type Handler = (req: IncomingMessage, res: ServerResponse, hits: number) => void;
  let server: Server | undefined;
  const requests: string[] = [];

  /** Serves gzip IDX files; `handler` may intercept requests (hits = requests so far for that path). */
  async function serve(bodies: Map<string, Buffer>, handler?: Handler): Promise<string> {
    requests.length = 0;
    server = createServer((req, res) => {
      const path = req.url ?? '';
      requests.push(path);
      const hits = requests.filter((p) => p === path).length;
      if (handler) {
        handler(req, res, hits);
        if (res.headersSent || res.writableEnded) return;
      }
      const body = bodies.get(path.split('/').pop() ?? '');
      if (!body) return void res.writeHead(404).end();
      res.writeHead(200, { 'content-length': body.length }).end(body);
    });
    await new Promise<void>((done) => server!.listen(0, '127.0.0.1', done));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}/mnist/`;
  }
  afterEach(async () => {
    server?.closeAllConnections();
    await new Promise((done) => server?.close(done) ?? done(undefined));
    server = undefined;
  });

  function gzipFiles(files: Files): { bodies: Map<string, Buffer>; md5: Record<string, string> } {
    const bodies = new Map<string, Buffer>();
    const md5: Record<string, string> = {};
    for (const [role, content] of Object.entries(files) as [keyof Files, IdxContent][]) {
      const name = `${IDX_FILE_NAMES[role]}.gz`;
      const body = gzipSync(encodeIdx(content));
      bodies.set(name, body);
      md5[name] = createHash('md5').update(body).digest('hex');
    }
    return { bodies, md5 };
  }
  const options = (mirrors: string[], md5: Record<string, string>): LoadDatasetOptions => ({
    dataset: 'mnist',
    cacheDir: work,
    download: { mirrors, md5, attempts: 3, retryDelayMs: 5 },
  });

  it('downloads into <cacheDir>/<dataset>, verifies md5, and reuses the cache', async () => {
    const files = makeFiles(8, 4);
    const { bodies, md5 } = gzipFiles(files);
    const mirror = await serve(bodies);
    const data = await loadDataset(options([mirror], md5));
    expect(data.source).toBe(join(work, 'mnist'));
    expect(data.train.count).toBe(8);
    expect(Array.from(data.test.labels)).toEqual(Array.from(labelsOf(files.testLabels)));
    expect((await filesIn(join(work, 'mnist'))).sort()).toEqual([...bodies.keys()].sort());
    expect(requests).toHaveLength(4);

    await loadDataset(options([mirror], md5));
    expect(requests).toHaveLength(4); // all four served from the cache
  });

  it('downloads again over a cached file whose md5 is wrong', async () => {
    const { bodies, md5 } = gzipFiles(makeFiles(5, 2));
    const mirror = await serve(bodies);
    await writeIdx(join(work, 'mnist', 'train-labels-idx1-ubyte.gz'), { kind: 'labels', labels: makeLabels(5, 9) }, { gzip: true });
    const data = await loadDataset(options([mirror], md5));
    expect(Array.from(data.train.labels)).toEqual(Array.from(makeLabels(5, 1)));
    expect(requests).toHaveLength(4);
  });

  it('takes the cache root from DATA_DIR', async () => {
    const { bodies, md5 } = gzipFiles(makeFiles(2, 2));
    const mirror = await serve(bodies);
    process.env.DATA_DIR = work;
    const data = await loadDataset({ dataset: 'mnist', download: { mirrors: [mirror], md5, retryDelayMs: 5 } });
    expect(data.source).toBe(join(work, 'mnist'));
  });

  it('rejects a checksum mismatch and leaves no file behind', async () => {
    const { bodies, md5 } = gzipFiles(makeFiles(3, 2));
    const mirror = await serve(bodies);
    const wrong = { ...md5, 'train-images-idx3-ubyte.gz': '0'.repeat(32) };
    const error = await loadDataset(options([mirror], wrong)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ChecksumMismatchError);
    expect((error as Error).message).toMatch(/train-images-idx3-ubyte\.gz: md5 [0-9a-f]{32} does not match the official checksum 0{32}/);
    // A wrong file is not retried from the same mirror.
    expect(requests.filter((p) => p.endsWith('train-images-idx3-ubyte.gz'))).toHaveLength(1);
    expect(await filesIn(join(work, 'mnist'))).toEqual([]);
  });

  it('retries after a failed request and then succeeds', async () => {
    const { bodies, md5 } = gzipFiles(makeFiles(3, 2));
    const mirror = await serve(bodies, (_req, res, hits) => {
      if (hits === 1) res.writeHead(503).end();
    });
    const data = await loadDataset(options([mirror], md5));
    expect(data.train.count).toBe(3);
    expect(requests).toHaveLength(8); // each file: one 503, one success
  });

  it('falls back to the next mirror when the first has no file', async () => {
    const { bodies, md5 } = gzipFiles(makeFiles(3, 2));
    const good = await serve(bodies);
    const empty = good.replace('/mnist/', '/nothing-here/');
    const data = await loadDataset({ dataset: 'mnist', cacheDir: work, download: { mirrors: [empty, good], md5, retryDelayMs: 5 } });
    expect(data.train.count).toBe(3);
    expect(requests.filter((p) => p.startsWith('/nothing-here/'))).toHaveLength(4);
  });

  it('never leaves a partial file when the connection drops mid-body', async () => {
    const { bodies, md5 } = gzipFiles(makeFiles(40, 2));
    const mirror = await serve(bodies, (req, res) => {
      const body = bodies.get(req.url!.split('/').pop()!)!;
      res.writeHead(200, { 'content-length': body.length });
      res.write(body.subarray(0, body.length >> 1), () => res.destroy());
    });
    const error = await loadDataset(options([mirror], md5)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DatasetUnavailableError);
    expect(requests).toHaveLength(3); // three attempts at the first file
    expect(await filesIn(join(work, 'mnist'))).toEqual([]);
  });

  it('says what to do when offline', async () => {
    const mirror = await serve(new Map());
    server!.close();
    server!.closeAllConnections();
    await new Promise((done) => setTimeout(done, 20));
    const error = await loadDataset(options([mirror], DATASET_SOURCES.mnist.md5)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DatasetUnavailableError);
    expect((error as Error).message).toMatch(/could not download train-images-idx3-ubyte\.gz from .* \(offline\?\); pass --data-dir or set MNIST_DIR/);
    expect(existsSync(join(work, 'mnist', 'train-images-idx3-ubyte.gz'))).toBe(false);
  });
});

describe('real data sets', () => {
  function meanAndStd(values: Float32Array): { mean: number; std: number } {
    let sum = 0;
    let sumSquares = 0;
    for (const v of values) {
      sum += v;
      sumSquares += v * v;
    }
    const mean = sum / values.length;
    return { mean, std: Math.sqrt(sumSquares / values.length - mean * mean) };
  }

  it.skipIf(!existsSync(REAL_MNIST_DIR))(`MNIST from ${REAL_MNIST_DIR}: 60000/10000, mean ≈ 0 and std ≈ 1 after normalisation`, async () => {
    const data = await loadDataset({ dataset: 'mnist', dataDir: REAL_MNIST_DIR });
    expect(data.train.count).toBe(60000);
    expect(data.test.count).toBe(10000);
    const { mean, std } = meanAndStd(data.train.images);
    expect(Math.abs(mean)).toBeLessThan(0.001);
    expect(Math.abs(std - 1)).toBeLessThan(0.001);
  });

  it.skipIf(!existsSync(FASHION_SYSTEM_DIR))(`Fashion-MNIST from ${FASHION_SYSTEM_DIR} (found without options): mean ≈ 0, std ≈ 1`, async () => {
    const data = await loadDataset({ dataset: 'fashion-mnist' });
    expect(data.source).toBe(FASHION_SYSTEM_DIR);
    expect([data.train.count, data.test.count]).toEqual([60000, 10000]);
    const { mean, std } = meanAndStd(data.train.images);
    expect(Math.abs(mean)).toBeLessThan(0.001);
    expect(Math.abs(std - 1)).toBeLessThan(0.001);
  });

  if (!existsSync(REAL_MNIST_DIR)) console.warn(`data.test.ts: skipping real-MNIST test, ${REAL_MNIST_DIR} not found`);
});
