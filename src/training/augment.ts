// Light random affine augmentation (rotation, scale, shift) for 28×28 images, on the CPU
// while the batch is gathered. Every image's transform comes from one mulberry32 stream
// seeded per (seed, epoch, batch), like shuffles and dropout, so a resumed or repeated run
// sees exactly the same images. Bilinear sampling; outside the image is the background.
import { mulberry32 } from '../lib/random.ts';
import type { Augmentation } from './types.ts';
import { IMAGE_PIXELS, IMAGE_SIDE } from '../model/spec.ts';

const SIDE = IMAGE_SIDE;
const PIXELS = IMAGE_PIXELS;
const CENTRE = (SIDE - 1) / 2;

/**
 * Writes a randomly transformed copy of each of the `count` images of `source` into `target`
 * (both [count, 28, 28] row-major). `background` is the value of an empty pixel (0 before
 * normalisation, so −mean/std after it).
 */
export function augmentImages(
  source: Float32Array,
  target: Float32Array,
  count: number,
  augmentation: Augmentation,
  seed: number,
  background: number,
): void {
  const random = mulberry32(seed);
  const uniform = (half: number) => (random() * 2 - 1) * half;
  for (let image = 0; image < count; image++) {
    const angle = (uniform(augmentation.rotationDegrees) * Math.PI) / 180;
    const scale = 1 + uniform(augmentation.scaleFraction);
    const shiftX = uniform(augmentation.shiftPixels);
    const shiftY = uniform(augmentation.shiftPixels);
    // Inverse map: output pixel → source position (rotate by −angle, divide by scale).
    const cos = Math.cos(angle) / scale;
    const sin = Math.sin(angle) / scale;
    const base = image * PIXELS;
    for (let v = 0; v < SIDE; v++) {
      const dy = v - CENTRE - shiftY;
      for (let u = 0; u < SIDE; u++) {
        const dx = u - CENTRE - shiftX;
        const x = CENTRE + cos * dx + sin * dy;
        const y = CENTRE - sin * dx + cos * dy;
        const x0 = Math.floor(x);
        const y0 = Math.floor(y);
        const fx = x - x0;
        const fy = y - y0;
        // The four neighbours, background outside the image (written out: a closure here
        // costs more than the rest of the loop).
        const inX0 = x0 >= 0 && x0 < SIDE;
        const inX1 = x0 + 1 >= 0 && x0 + 1 < SIDE;
        const inY0 = y0 >= 0 && y0 < SIDE;
        const inY1 = y0 + 1 >= 0 && y0 + 1 < SIDE;
        const row0 = base + y0 * SIDE;
        const row1 = row0 + SIDE;
        const p00 = inX0 && inY0 ? source[row0 + x0]! : background;
        const p10 = inX1 && inY0 ? source[row0 + x0 + 1]! : background;
        const p01 = inX0 && inY1 ? source[row1 + x0]! : background;
        const p11 = inX1 && inY1 ? source[row1 + x0 + 1]! : background;
        const top = p00 * (1 - fx) + p10 * fx;
        const bottom = p01 * (1 - fx) + p11 * fx;
        target[base + v * SIDE + u] = top * (1 - fy) + bottom * fy;
      }
    }
  }
}
