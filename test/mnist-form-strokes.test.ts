// ?preprocess=mnist brings stroke widths into MNIST's range: hairlines grow, blobs thin,
// MNIST-like strokes stay as they are.
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { decodeImage } from '../src/serving/decode.ts';
import { MNIST_STROKE_RANGE, normaliseStrokeWidth, strokeWidth, toMnistForm } from '../src/serving/mnist-form.ts';

/** A vertical bar `width` pixels wide, rows 4–23, in 28×28. */
function bar(width: number): Uint8Array {
  const pixels = new Uint8Array(784);
  for (let y = 4; y < 24; y++) for (let x = 0; x < width; x++) pixels[y * 28 + 12 + x] = 255;
  return pixels;
}

const pen = (strokeWidth: number) =>
  sharp(
    Buffer.from(`<svg xmlns="http://www.w3.org/2000/svg" width="400" height="400"><rect width="100%" height="100%" fill="#fff"/>
      <path d="M 120 80 L 280 80 L 170 330" stroke="#000" stroke-width="${strokeWidth}" stroke-linecap="round" fill="none"/></svg>`),
  )
    .png()
    .toBuffer();

describe('stroke-width normalisation', () => {
  it('measures a bar\'s width as about its width', () => {
    expect(strokeWidth(bar(2))).toBeCloseTo(2 * (2 * 20) / (2 * 20 + 2 * 2), 6);
    expect(strokeWidth(bar(4))).toBeGreaterThan(3);
    expect(strokeWidth(new Uint8Array(784))).toBe(0);
  });

  it('grows a 1-pixel hairline, thins a 6-pixel blob, leaves a 2-pixel stroke alone', () => {
    expect(strokeWidth(normaliseStrokeWidth(bar(1)))).toBeGreaterThanOrEqual(MNIST_STROKE_RANGE.min);
    const thinned = normaliseStrokeWidth(bar(6));
    expect(strokeWidth(thinned)).toBeLessThanOrEqual(MNIST_STROKE_RANGE.max);
    expect(strokeWidth(thinned)).toBeGreaterThanOrEqual(MNIST_STROKE_RANGE.min);
    const mnistLike = bar(2);
    expect(normaliseStrokeWidth(mnistLike)).toBe(mnistLike);
  });

  it('a fine pen comes out with MNIST-range strokes, a broad pen\'s strokes come out thinner', async () => {
    const widths = async (strokeWidthPx: number) => {
      const image = await decodeImage(await pen(strokeWidthPx), 'pen', { maxPixels: 1e6, background: 255, maxSide: 512 });
      return {
        asDrawn: strokeWidth(await toMnistForm(image, 'pen', { normaliseStrokes: false })),
        normalised: strokeWidth(await toMnistForm(image, 'pen')),
      };
    };
    const fine = await widths(4);
    expect(fine.asDrawn).toBeLessThan(MNIST_STROKE_RANGE.min);
    expect(fine.normalised).toBeGreaterThanOrEqual(MNIST_STROKE_RANGE.min);
    expect(fine.normalised).toBeLessThanOrEqual(MNIST_STROKE_RANGE.max);
    // Thinned, then fitted to 20×20 again (which widens it a little): thinner than drawn.
    const broad = await widths(110);
    expect(broad.asDrawn).toBeGreaterThan(MNIST_STROKE_RANGE.max);
    expect(broad.normalised).toBeLessThan(broad.asDrawn);
  });
});
