// Light random affine augmentation (rotation, scale, shift) for 28×28 images, on the CPU
// while the batch is gathered. Every image's transform comes from one mulberry32 stream
// seeded per (seed, epoch, batch), like shuffles and dropout, so a resumed or repeated run
// sees exactly the same images. Bilinear sampling; outside the image is the background.
import { mulberry32 } from '../lib/random.ts';
import type { Augmentation } from './types.ts';

const SIDE = 28;
const PIXELS = SIDE * SIDE;
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
        const at = (px: number, py: number) =>
          px >= 0 && px < SIDE && py >= 0 && py < SIDE ? source[base + py * SIDE + px]! : background;
        const top = at(x0, y0) * (1 - fx) + at(x0 + 1, y0) * fx;
        const bottom = at(x0, y0 + 1) * (1 - fx) + at(x0 + 1, y0 + 1) * fx;
        target[base + v * SIDE + u] = top * (1 - fy) + bottom * fy;
      }
    }
  }
}
