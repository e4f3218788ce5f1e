// The model contract every model here shares (seed and compact architectures,
// MNIST and Fashion-MNIST): what goes in, what comes out, and how pixels become
// inputs. Data reading, training, serving, the protocols and ONNX export all take
// these from here.

/**
 * The architectures (their layers are in seed-net.ts). Kept apart from the tfjs model: the
 * registry's types, the job schema and the recipes need only the names, and importing tfjs costs
 * a process that never runs a model (the worker's main thread, the API's job routes) ~95 MB.
 */
export const ARCHITECTURE_NAMES = ['seed', 'compact'] as const;
export type ArchitectureName = (typeof ARCHITECTURE_NAMES)[number];

export interface ConvBlock {
  name: string;
  filters: number;
  dropout: boolean;
  poolAfter: boolean;
}

/** The five conv → ReLU → BatchNorm blocks; `pool` marks the 2×2 average pool after a block. */
export const CONV_BLOCKS: readonly ConvBlock[] = [
  { name: 'block0', filters: 16, dropout: true, poolAfter: false },
  { name: 'block1', filters: 16, dropout: true, poolAfter: false },
  { name: 'block1d', filters: 16, dropout: true, poolAfter: true },
  { name: 'block2', filters: 32, dropout: true, poolAfter: false },
  { name: 'block3', filters: 16, dropout: false, poolAfter: false },
];

/**
 * The compact model: the seed net's topology and building blocks (bias-free 3×3 convs,
 * ReLU → BN → dropout, one 2×2 pool, GAP, 1×1 head) with fewer channels where the
 * maps are largest, so it has about half the parameters and FLOPs: 7,568 trainable.
 */
export const COMPACT_BLOCKS: readonly ConvBlock[] = [
  { name: 'block0', filters: 8, dropout: true, poolAfter: false },
  { name: 'block1', filters: 12, dropout: true, poolAfter: false },
  { name: 'block1d', filters: 16, dropout: true, poolAfter: true },
  { name: 'block2', filters: 16, dropout: true, poolAfter: false },
  { name: 'block3', filters: 16, dropout: false, poolAfter: false },
];
export const COMPACT_TRAINABLE_PARAMS = 7_568;


/** Per architecture: its blocks and the tfjs model name that identifies it in a saved model.json. */
export const ARCHITECTURES: Readonly<Record<ArchitectureName, { blocks: readonly ConvBlock[]; modelName: string }>> = {
  seed: { blocks: CONV_BLOCKS, modelName: 'seed_net' },
  compact: { blocks: COMPACT_BLOCKS, modelName: 'compact_net' },
};

/** A model (built, loaded, or saved files) that is not of the seed-net family: another architecture, other shapes or dtypes. */
export class NotSeedNetError extends Error {
  override name = 'NotSeedNetError';
}

/** The architecture a tfjs model name (model.json keeps it) identifies. */
export function architectureNamed(modelName: unknown): ArchitectureName {
  const found = ARCHITECTURE_NAMES.find((name) => ARCHITECTURES[name].modelName === modelName);
  if (!found) {
    throw new NotSeedNetError(`unknown model architecture ${JSON.stringify(modelName)} (expected ${ARCHITECTURE_NAMES.map((n) => ARCHITECTURES[n].modelName).join(' or ')})`);
  }
  return found;
}

/** BatchNorm's ε (PyTorch's and tfjs's default), in training and in serving's folding. */
export const BN_EPSILON = 1e-5;

/** Images are square, IMAGE_SIDE × IMAGE_SIDE, one grey channel. */
export const IMAGE_SIDE = 28;
/** Pixels per image (784). */
export const IMAGE_PIXELS = IMAGE_SIDE * IMAGE_SIDE;
/** One image as the network takes it: NHWC without the batch dimension. */
export const INPUT_SHAPE = [IMAGE_SIDE, IMAGE_SIDE, 1] as const;
/** Labels 0–9; the network's output has one probability per class. */
export const NUM_CLASSES = 10;

/** Mean and standard deviation of the training pixels (0..1 scale); recorded in metadata.json. */
export interface Normalization {
  mean: number;
  std: number;
}

/** The network input each pixel value 0–255 maps to, x' = (x/255 − mean) / std: a 256-entry table. */
export function normalisationTable({ mean, std }: Normalization): Float32Array {
  const table = new Float32Array(256);
  for (let value = 0; value < 256; value++) table[value] = (value / 255 - mean) / std;
  return table;
}

/** Pixel values 0–255 → network input, x' = (x/255 − mean) / std (the same arithmetic in training and serving). */
export function normalisePixels(pixels: ArrayLike<number>, normalization: Normalization | Float32Array): Float32Array {
  const out = new Float32Array(pixels.length);
  normaliseInto(out, 0, pixels, normalization);
  return out;
}

/** normalisePixels written into `out` from index `offset` (a batch being assembled), allocating nothing for a table given. */
export function normaliseInto(out: Float32Array, offset: number, pixels: ArrayLike<number>, normalization: Normalization | Float32Array): void {
  if (!(pixels instanceof Uint8Array)) {
    if (normalization instanceof Float32Array) throw new TypeError('a normalisation table needs uint8 pixels');
    const { mean, std } = normalization;
    for (let i = 0; i < pixels.length; i++) out[offset + i] = (pixels[i]! / 255 - mean) / std;
    return;
  }
  // Whole data sets (47 M bytes for MNIST) and every served image: through the table, the same values.
  const table = normalization instanceof Float32Array ? normalization : normalisationTable(normalization);
  for (let i = 0; i < pixels.length; i++) out[offset + i] = table[pixels[i]!]!;
}
