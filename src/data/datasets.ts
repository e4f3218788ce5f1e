// Loads MNIST or Fashion-MNIST into normalised typed arrays.
// Where the files come from, first match wins:
//   1. options.dataDir, 2. env MNIST_DIR / FASHION_MNIST_DIR, 3. a system copy
//   (Debian's dataset-fashion-mnist), 4. a download cache <cacheDir>/<dataset>,
//   filled from the official mirrors and verified against the official md5s.
// Local directories are checked by structure only (IDX headers, counts, labels),
// because a user may bring a rebuilt or recompressed copy.
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { readIdxImages, readIdxLabels } from './idx.ts';
import { downloadFile, md5OfFile } from './download.ts';
import type { Dataset, DatasetName, LoadDatasetOptions, Split } from './types.ts';
import { datasetDir, loadDataSettings } from '../lib/config.ts';
import { IMAGE_PIXELS, normalisationTable, normalisePixels } from '../model/spec.ts';

export { DatasetUnavailableError, ChecksumMismatchError } from './download.ts';

/** The four files of a data set, by their standard names (without .gz). */
export const IDX_FILE_NAMES = {
  trainImages: 'train-images-idx3-ubyte',
  trainLabels: 'train-labels-idx1-ubyte',
  testImages: 't10k-images-idx3-ubyte',
  testLabels: 't10k-labels-idx1-ubyte',
} as const;
type FileRole = keyof typeof IDX_FILE_NAMES;
const FILE_ROLES = Object.keys(IDX_FILE_NAMES) as FileRole[];

interface DatasetSource {
  envVar: string;
  /** Directories where a distribution package may have installed the files. */
  systemDirs: readonly string[];
  mirrors: readonly string[];
  /** Official md5 of each .gz file. */
  md5: Readonly<Record<string, string>>;
  mean: number;
  std: number;
}

export const DATASET_SOURCES: Record<DatasetName, DatasetSource> = {
  mnist: {
    envVar: 'MNIST_DIR',
    systemDirs: [],
    mirrors: ['https://storage.googleapis.com/cvdf-datasets/mnist/', 'https://ossci-datasets.s3.amazonaws.com/mnist/'],
    md5: {
      'train-images-idx3-ubyte.gz': 'f68b3c2dcbeaaa9fbdd348bbdeb94873',
      'train-labels-idx1-ubyte.gz': 'd53e105ee54ea40749a09fcbcd1e9432',
      't10k-images-idx3-ubyte.gz': '9fb629c4189551a2d022fa330f9573f3',
      't10k-labels-idx1-ubyte.gz': 'ec29112dd5afa0611ce80d1b7f02629c',
    },
    mean: 0.1307,
    std: 0.3081,
  },
  'fashion-mnist': {
    envVar: 'FASHION_MNIST_DIR',
    // Debian recompressed the files, so their md5s differ from upstream: another
    // reason local copies are validated by structure, not checksum.
    systemDirs: ['/usr/share/datasets/fashion-mnist'],
    mirrors: ['http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/'],
    md5: {
      'train-images-idx3-ubyte.gz': '8d4fb7e6c68d591d4c3dfef9ec88bf0d',
      'train-labels-idx1-ubyte.gz': '25c81989df183df01b3e8a0aad5dffbe',
      't10k-images-idx3-ubyte.gz': 'bef4ecab320f06d8554ea6380940ec79',
      't10k-labels-idx1-ubyte.gz': 'bb300cfdad3c16e7a12a480ee83cd310',
    },
    // Computed on the 60,000 training images of the Debian copy: 0.28604, 0.35302.
    mean: 0.286,
    std: 0.353,
  },
};

/** A local directory lacks a file, or its images and labels disagree. */
export class DatasetFilesError extends Error {
  override name = 'DatasetFilesError';
}

export async function loadDataset(options: LoadDatasetOptions): Promise<Dataset> {
  const { dataset } = options;
  const source = DATASET_SOURCES[dataset];
  if (!source) throw new RangeError(`unknown dataset "${String(dataset)}"; expected mnist or fashion-mnist`);
  const trainLimit = checkLimit(options.limit, 'limit');
  const testLimit = checkLimit(options.testLimit, 'testLimit');

  const dir = await locateFiles(options, source);
  const files = Object.fromEntries(FILE_ROLES.map((role) => [role, findFile(dir, role)])) as Record<FileRole, string>;
  const [trainImages, trainLabels, testImages, testLabels] = await Promise.all([
    readIdxImages(files.trainImages),
    readIdxLabels(files.trainLabels),
    readIdxImages(files.testImages),
    readIdxLabels(files.testLabels),
  ]);
  const stats = { mean: source.mean, std: source.std };
  return {
    name: dataset,
    train: makeSplit(trainImages, trainLabels, files.trainImages, files.trainLabels, trainLimit, stats),
    test: makeSplit(testImages, testLabels, files.testImages, files.testLabels, testLimit, stats),
    mean: stats.mean,
    std: stats.std,
    source: dir,
  };
}

function makeSplit(
  images: { count: number; pixels: Uint8Array },
  labels: Uint8Array,
  imagesFile: string,
  labelsFile: string,
  limit: number | undefined,
  stats: { mean: number; std: number },
): Split {
  if (images.count !== labels.length) {
    throw new DatasetFilesError(
      `${imagesFile} has ${images.count} images but ${labelsFile} has ${labels.length} labels; they must match`,
    );
  }
  const count = Math.min(images.count, limit ?? images.count);
  // Kept as uint8 (47 MB for MNIST's training set instead of 188 MB as floats); batches are
  // normalised as they are gathered. A limited split copies its part, so that it does not
  // keep the whole decompressed file alive.
  const whole = count === images.count;
  const pixels = whole ? images.pixels : images.pixels.slice(0, count * IMAGE_PIXELS);
  const normalised = normalisationTable(stats);
  let floats: Float32Array | undefined;
  return {
    raw: { pixels, normalised },
    get images() {
      floats ??= normalisePixels(pixels, normalised);
      return floats;
    },
    labels: labels.slice(0, count),
    count,
  };
}

function checkLimit(value: number | undefined, field: string): number | undefined {
  if (value === undefined) return undefined;
  if (!Number.isInteger(value) || value < 1) throw new RangeError(`${field} must be a positive integer, got ${value}`);
  return value;
}

/** Returns the directory holding the four files, downloading them if no local copy is configured. */
async function locateFiles(options: LoadDatasetOptions, source: DatasetSource): Promise<string> {
  // Without a directory from the caller: MNIST_DIR / FASHION_MNIST_DIR and DATA_DIR, read by lib/config.ts.
  const fromEnv = loadDataSettings();
  const explicit = options.dataDir ?? datasetDir(fromEnv, options.dataset);
  if (explicit) {
    if (!existsSync(explicit)) throw new DatasetFilesError(`${explicit}: data directory does not exist`);
    return resolve(explicit);
  }
  const systemDir = source.systemDirs.find((dir) => existsSync(dir));
  if (systemDir) return systemDir;

  const cacheRoot = options.cacheDir ?? fromEnv.dataDir;
  const dir = resolve(cacheRoot, options.dataset);
  const download = options.download ?? {};
  const md5 = download.md5 ?? source.md5;
  for (const role of FILE_ROLES) {
    const name = `${IDX_FILE_NAMES[role]}.gz`;
    const expected = md5[name];
    if (!expected) throw new RangeError(`no md5 given for ${name}`);
    const dest = join(dir, name);
    if ((await md5OfFile(dest)) === expected) continue; // cached and intact
    await downloadFile({
      name,
      mirrors: download.mirrors ?? source.mirrors,
      md5: expected,
      dest,
      attempts: download.attempts ?? 3,
      retryDelayMs: download.retryDelayMs ?? 1000,
      hint: `pass --data-dir or set ${source.envVar}`,
      signal: options.signal,
    });
  }
  return dir;
}

/** The .gz file if present, else the raw one (the reader checks the bytes either way). */
function findFile(dir: string, role: FileRole): string {
  const base = join(dir, IDX_FILE_NAMES[role]);
  for (const candidate of [`${base}.gz`, base]) {
    if (existsSync(candidate)) return candidate;
  }
  throw new DatasetFilesError(`${dir}: missing ${IDX_FILE_NAMES[role]}.gz (or uncompressed ${IDX_FILE_NAMES[role]})`);
}
