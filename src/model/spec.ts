// The model contract every model here shares (seed and compact architectures,
// MNIST and Fashion-MNIST): what goes in, what comes out, and how pixels become
// inputs. Data reading, training, serving, the protocols and ONNX export all take
// these from here.

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

/** Pixel values 0–255 → network input, x' = (x/255 − mean) / std (the same arithmetic in training and serving). */
export function normalisePixels(pixels: ArrayLike<number>, { mean, std }: Normalization): Float32Array {
  if (!(pixels instanceof Uint8Array)) return Float32Array.from(pixels, (value) => (value / 255 - mean) / std);
  // Whole data sets (47 M bytes for MNIST): a 256-entry table, the same values.
  const table = new Float32Array(256);
  for (let value = 0; value < 256; value++) table[value] = (value / 255 - mean) / std;
  const out = new Float32Array(pixels.length);
  for (let i = 0; i < pixels.length; i++) out[i] = table[pixels[i]!]!;
  return out;
}
