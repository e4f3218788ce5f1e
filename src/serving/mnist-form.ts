// `?preprocess=mnist`: any photo or drawing of a digit → MNIST form, the way MNIST
// itself was made: bright ink on black, the ink's bounding box scaled to fit 20×20
// (aspect kept), placed in 28×28 with its centre of mass at the centre.
import sharp from 'sharp';
import { MNIST_SIDE, type GrayImage } from './decode.ts';
import { UnprocessableInputError } from './errors.ts';

/** Photos are decoded at most this large: plenty for a 20×20 result, and it bounds the work per image. */
export const PREPROCESS_MAX_SIDE = 512;
const FIT_SIDE = 20;
/** Less difference than this between paper and ink (0–255) means there is no digit to find. */
const MIN_CONTRAST = 32;
/** Values this far (fraction of the contrast) above the paper are still paper: texture, noise, shadows. */
const NOISE_FLOOR = 0.2;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}

/** The image's frame (outermost rows and columns), where the paper shows. */
function borderValues({ width, height, pixels }: GrayImage): number[] {
  const values: number[] = [];
  for (let x = 0; x < width; x++) values.push(pixels[x]!, pixels[(height - 1) * width + x]!);
  for (let y = 1; y < height - 1; y++) values.push(pixels[y * width]!, pixels[y * width + width - 1]!);
  return values;
}

/** Ink intensity 0–255 on a black background, with the paper's texture removed. */
function inkOf(image: GrayImage, what: string): Float32Array {
  const paper = median(borderValues(image));
  // Dark ink on light paper (the usual photo or drawing) is inverted to MNIST's light-on-dark.
  const invert = paper > 127;
  // Plain loops, not Float32Array.from/map with callbacks: this runs on the event
  // loop for up to PREPROCESS_MAX_SIDE² pixels, where per-pixel callbacks cost tens of ms.
  const { pixels } = image;
  const ink = new Float32Array(pixels.length);
  let peak = 0;
  for (let i = 0; i < pixels.length; i++) {
    const v = invert ? 255 - pixels[i]! : pixels[i]!;
    ink[i] = v;
    if (ink[i]! > peak) peak = ink[i]!;
  }
  const background = invert ? 255 - paper : paper;
  if (peak - background < MIN_CONTRAST) {
    throw new UnprocessableInputError(
      `${what} shows no digit to preprocess: ink and background differ by ${Math.round(peak - background)} of 255 gray levels`,
    );
  }
  const floor = background + NOISE_FLOOR * (peak - background);
  for (let i = 0; i < ink.length; i++) ink[i] = Math.min(255, Math.max(0, ((ink[i]! - floor) / (peak - floor)) * 255));
  return ink;
}

function boundingBox(ink: Float32Array, width: number, height: number) {
  let left = width, right = -1, top = height, bottom = -1;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (ink[y * width + x]! > 0) {
        left = Math.min(left, x);
        right = Math.max(right, x);
        top = Math.min(top, y);
        bottom = Math.max(bottom, y);
      }
    }
  }
  return { left, top, width: right - left + 1, height: bottom - top + 1 };
}

/** Centre of mass of an image's values, in pixel-index coordinates. */
function centreOfMass(values: Uint8Array, width: number): { x: number; y: number } {
  let mass = 0, sumX = 0, sumY = 0;
  values.forEach((v, i) => {
    mass += v;
    sumX += v * (i % width);
    sumY += v * Math.floor(i / width);
  });
  return mass === 0 ? { x: (width - 1) / 2, y: (values.length / width - 1) / 2 } : { x: sumX / mass, y: sumY / mass };
}

/** Returns the 28×28 MNIST-form pixels (0–255, row-major) of a grayscale image of any size. */
export async function toMnistForm(image: GrayImage, what: string): Promise<Uint8Array> {
  const ink = inkOf(image, what);
  const box = boundingBox(ink, image.width, image.height);
  const crop = new Uint8Array(box.width * box.height);
  for (let y = 0; y < box.height; y++) {
    for (let x = 0; x < box.width; x++) crop[y * box.width + x] = Math.round(ink[(box.top + y) * image.width + box.left + x]!);
  }
  const scale = FIT_SIDE / Math.max(box.width, box.height);
  const width = Math.max(1, Math.round(box.width * scale));
  const height = Math.max(1, Math.round(box.height * scale));
  const fitted = await sharp(crop, { raw: { width: box.width, height: box.height, channels: 1 } })
    .resize(width, height, { fit: 'fill', kernel: 'mitchell' })
    .greyscale() // sharp writes sRGB (3 channels) unless told otherwise
    .raw({ depth: 'uchar' })
    .toBuffer();
  // Shrinking softens thin strokes; MNIST's ink peaks at 255.
  const gain = 255 / Math.max(1, ...fitted);
  fitted.forEach((v, i) => (fitted[i] = Math.min(255, Math.round(v * gain))));

  // Shift so the centre of mass lands on the centre, but never push ink off the canvas.
  const mass = centreOfMass(fitted, width);
  const centre = (MNIST_SIDE - 1) / 2;
  const left = Math.min(MNIST_SIDE - width, Math.max(0, Math.round(centre - mass.x)));
  const top = Math.min(MNIST_SIDE - height, Math.max(0, Math.round(centre - mass.y)));
  const out = new Uint8Array(MNIST_SIDE * MNIST_SIDE);
  for (let y = 0; y < height; y++) out.set(fitted.subarray(y * width, (y + 1) * width), (top + y) * MNIST_SIDE + left);
  return out;
}
