// The images the serving benchmarks send: real MNIST test digits when the files are here
// (MNIST_DIR, else ../shared/data/mnist), else a drawn stroke, as 28×28 grayscale PNGs.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { readIdxImages } from '../src/data/idx.ts';

const MNIST_TEST_IMAGES = join(process.env.MNIST_DIR ?? join(import.meta.dirname, '..', '..', 'shared', 'data', 'mnist'), 't10k-images-idx3-ubyte.gz');

export async function samplePngs(count: number): Promise<Buffer[]> {
  const pixels = existsSync(MNIST_TEST_IMAGES)
    ? (await readIdxImages(MNIST_TEST_IMAGES)).pixels
    : Uint8Array.from({ length: count * 784 }, (_, i) => (((i % 28) - 12) ** 2 < 9 ? 255 : 0));
  return Promise.all(
    Array.from({ length: count }, (_, i) =>
      sharp(Buffer.from(pixels.subarray(i * 784, (i + 1) * 784)), { raw: { width: 28, height: 28, channels: 1 } }).toColourspace('b-w').png().toBuffer(),
    ),
  );
}
