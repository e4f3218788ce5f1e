export const DATASET_NAMES = ['mnist', 'fashion-mnist'] as const;
export type DatasetName = (typeof DATASET_NAMES)[number];

/** One split of a data set: count images of 784 pixels, row-major 28×28. */
export interface Split {
  /**
   * The images normalised, count × 784 floats. A loaded split computes them only when first
   * read (4× the size of `raw`): training and evaluation gather their batches from `raw`.
   */
  readonly images: Float32Array;
  /** The images as stored (0–255 per pixel) and the float each value normalises to. */
  readonly raw?: { pixels: Uint8Array; normalised: Float32Array };
  labels: Uint8Array;
  count: number;
}

export interface Dataset {
  name: DatasetName;
  train: Split;
  test: Split;
  /** Normalisation constants applied: x' = (x/255 - mean) / std. */
  mean: number;
  std: number;
  /** Where the files came from (directory path), for metadata and logs. */
  source: string;
}

export interface LoadDatasetOptions {
  dataset: DatasetName;
  /** A local directory with the four IDX files (gzip or raw); validated by structure, not checksum. */
  dataDir?: string;
  /** Download cache root used when no local directory is given (env DATA_DIR, default ./data); files go to <cacheDir>/<dataset>/. */
  cacheDir?: string;
  /** Use only the first N training images. */
  limit?: number;
  /** Use only the first N test images. */
  testLimit?: number;
  signal?: AbortSignal;
  /** Download settings; defaults are the official mirrors and checksums (tests point this at a local server). */
  download?: DownloadOptions;
}

export interface DownloadOptions {
  /** Base URLs ending in '/', tried in order. */
  mirrors?: readonly string[];
  /** md5 of each downloaded file, keyed by file name (e.g. 'train-images-idx3-ubyte.gz'). */
  md5?: Readonly<Record<string, string>>;
  /** Rounds over all mirrors before giving up (default 3). */
  attempts?: number;
  /** Pause before the second round, doubled each round after (default 1000 ms). */
  retryDelayMs?: number;
}

/** Human-readable class names, index = label. */
export const CLASS_NAMES: Record<DatasetName, readonly string[]> = {
  mnist: ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'],
  'fashion-mnist': ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'],
};
