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
  if (!(pixels instanceof Uint8Array)) {
    if (normalization instanceof Float32Array) throw new TypeError('a normalisation table needs uint8 pixels');
    const { mean, std } = normalization;
    return Float32Array.from(pixels, (value) => (value / 255 - mean) / std);
  }
  // Whole data sets (47 M bytes for MNIST): through the table, the same values.
  const table = normalization instanceof Float32Array ? normalization : normalisationTable(normalization);
  const out = new Float32Array(pixels.length);
  for (let i = 0; i < pixels.length; i++) out[i] = table[pixels[i]!]!;
  return out;
}
