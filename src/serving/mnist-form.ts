// `?preprocess=mnist`: any photo or drawing of a digit → MNIST form, the way MNIST
// itself was made: bright ink on black, the ink's bounding box scaled to fit 20×20
// (aspect kept), placed in 28×28 with its centre of mass at the centre.
import { loadSharp, type GrayImage } from './decode.ts';
import { UnprocessableInputError } from './errors.ts';
import { IMAGE_SIDE } from '../model/spec.ts';

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

/**
 * MNIST's strokes, measured as 2·area/perimeter of the pixels ≥ 128 (≈ the stroke width for
 * a long stroke): 5th–95th percentile 1.2–2.9 px, median 1.8, over 2,000 test digits. Hairline
 * fonts and fine pens land near 0.8, a broad pen on a small digit near 5.6
 * (bench/digit-corpus.ts); outside this range strokes are grown or thinned one pixel a step.
 */
export const MNIST_STROKE_RANGE = { min: 1.3, max: 3.5 } as const;

/** Stroke width estimate 2·area/perimeter over the pixels ≥ 128 (0 when there are none). */
export function strokeWidth(pixels: Uint8Array, side = IMAGE_SIDE): number {
  let area = 0;
  let perimeter = 0;
  const on = (x: number, y: number) => x >= 0 && y >= 0 && x < side && y < side && pixels[y * side + x]! >= 128;
  for (let y = 0; y < side; y++) {
    for (let x = 0; x < side; x++) {
      if (!on(x, y)) continue;
      area++;
      perimeter += Number(!on(x + 1, y)) + Number(!on(x - 1, y)) + Number(!on(x, y + 1)) + Number(!on(x, y - 1));
    }
  }
  return perimeter ? (2 * area) / perimeter : 0;
}

/** Grayscale dilation (max) or erosion (min) over each pixel and its 4 neighbours. */
function morph(pixels: Uint8Array, grow: boolean, side = IMAGE_SIDE): Uint8Array {
  const out = new Uint8Array(pixels.length);
  const pick = grow ? Math.max : Math.min;
  const at = (x: number, y: number) => (x >= 0 && y >= 0 && x < side && y < side ? pixels[y * side + x]! : 0);
  for (let y = 0; y < side; y++) {
    for (let x = 0; x < side; x++) out[y * side + x] = pick(at(x, y), at(x + 1, y), at(x - 1, y), at(x, y + 1), at(x, y - 1));
  }
  return out;
}

/** Grows hairline strokes and thins blobs towards MNIST's stroke widths (at most two steps). */
export function normaliseStrokeWidth(pixels: Uint8Array): Uint8Array {
  let current = pixels;
  for (let step = 0; step < 2; step++) {
    const width = strokeWidth(current);
    if (width === 0) break;
    if (width < MNIST_STROKE_RANGE.min) {
      current = morph(current, true);
    } else if (width > MNIST_STROKE_RANGE.max) {
      const thinner = morph(current, false);
      if (strokeWidth(thinner) < MNIST_STROKE_RANGE.min) break; // never erode a digit into fragments
      current = thinner;
    } else {
      break;
    }
  }
  return current;
}

export interface MnistFormOptions {
  /** Bring stroke widths into MNIST's range (normaliseStrokeWidth); default true. */
  normaliseStrokes?: boolean;
}

/** Returns the 28×28 MNIST-form pixels (0–255, row-major) of a grayscale image of any size. */
export async function toMnistForm(image: GrayImage, what: string, options: MnistFormOptions = {}): Promise<Uint8Array> {
  const out = await fitAndCentre(inkOf(image, what), image.width, image.height);
  if (options.normaliseStrokes === false) return out;
  const normalised = normaliseStrokeWidth(out);
  // Thinning shrinks the digit (growing enlarges it): fit it to 20×20 again. That scales a
  // thinned stroke back up a little; repeating until it settles read the generated corpus
  // worse (77.2 % against 78.0 % for predict-accuracy's model), so once it is.
  return normalised === out ? out : fitAndCentre(Float32Array.from(normalised), IMAGE_SIDE, IMAGE_SIDE);
}

/** The ink's bounding box scaled to fit 20×20 (aspect kept), centred by mass in 28×28. */
async function fitAndCentre(ink: Float32Array, imageWidth: number, imageHeight: number): Promise<Uint8Array> {
  const box = boundingBox(ink, imageWidth, imageHeight);
  const crop = new Uint8Array(box.width * box.height);
  for (let y = 0; y < box.height; y++) {
    for (let x = 0; x < box.width; x++) crop[y * box.width + x] = Math.round(ink[(box.top + y) * imageWidth + box.left + x]!);
  }
  const scale = FIT_SIDE / Math.max(box.width, box.height);
  const width = Math.max(1, Math.round(box.width * scale));
  const height = Math.max(1, Math.round(box.height * scale));
  const sharp = await loadSharp();
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
  const centre = (IMAGE_SIDE - 1) / 2;
  const left = Math.min(IMAGE_SIDE - width, Math.max(0, Math.round(centre - mass.x)));
  const top = Math.min(IMAGE_SIDE - height, Math.max(0, Math.round(centre - mass.y)));
  const out = new Uint8Array(IMAGE_SIDE * IMAGE_SIDE);
  for (let y = 0; y < height; y++) out.set(fitted.subarray(y * width, (y + 1) * width), (top + y) * IMAGE_SIDE + left);
  return out;
}
