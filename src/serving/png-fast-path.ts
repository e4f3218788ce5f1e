// The one image shape clients send most: an 8-bit grayscale, non-interlaced 28×28
// PNG. sharp costs about a millisecond per image in fixed overhead (a libvips
// pipeline and a thread-pool hop), more than the forward pass; decoding such a
// PNG here takes microseconds: zlib plus the five scanline filters. Only PNGs
// whose pixels mean exactly their bytes are taken (no transparency, gamma or
// colour profile chunks); anything else, including anything malformed, returns
// undefined and goes to sharp, which then decides and words the error.
import { crc32, inflateSync } from 'node:zlib';

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
/** Chunks that carry no pixel meaning; any other ancillary chunk sends the image to sharp. */
const INERT_CHUNKS = new Set(['tEXt', 'zTXt', 'iTXt', 'tIME', 'pHYs']);

/** The pixels (row-major, one byte each) of a side×side 8-bit grayscale PNG, or undefined. */
export function decodeGrayPng(bytes: Uint8Array, side: number): Uint8Array | undefined {
  const png = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (png.length < SIGNATURE.length || !SIGNATURE.equals(png.subarray(0, SIGNATURE.length))) return undefined;
  const idat: Buffer[] = [];
  let offset = SIGNATURE.length;
  let sawHeader = false;
  for (;;) {
    if (offset + 12 > png.length) return undefined;
    const length = png.readUInt32BE(offset);
    const end = offset + 12 + length;
    if (end > png.length) return undefined;
    const typeAndData = png.subarray(offset + 4, offset + 8 + length);
    if (crc32(typeAndData) !== png.readUInt32BE(offset + 8 + length)) return undefined;
    const type = typeAndData.toString('latin1', 0, 4);
    const data = typeAndData.subarray(4);
    offset = end;
    if (!sawHeader) {
      // IHDR: width, height, bit depth 8, colour type 0 (gray), compression 0, filter 0, interlace 0.
      if (type !== 'IHDR' || length !== 13) return undefined;
      if (data.readUInt32BE(0) !== side || data.readUInt32BE(4) !== side) return undefined;
      if (data[8] !== 8 || data[9] !== 0 || data[10] !== 0 || data[11] !== 0 || data[12] !== 0) return undefined;
      sawHeader = true;
    } else if (type === 'IDAT') {
      idat.push(data);
    } else if (type === 'IEND') {
      break;
    } else if (!INERT_CHUNKS.has(type)) {
      return undefined;
    }
  }
  if (offset !== png.length) return undefined; // trailing bytes: let sharp judge
  const stride = side + 1; // a filter-type byte before each scanline
  let raw: Buffer;
  try {
    // chunkSize: zlib's output buffer; the default 16 KB would be a fresh allocation per image
    // (a slice of Buffer's shared pool instead), garbage that piles up in the malloc heap under load.
    raw = inflateSync(Buffer.concat(idat), { maxOutputLength: side * stride, chunkSize: Math.max(64, side * stride) });
  } catch {
    return undefined; // corrupt or oversized data: sharp decodes it and reports what is wrong
  }
  return raw.length === side * stride ? unfilter(raw, side) : undefined;
}

/** Reverses PNG's per-scanline filters (one byte per pixel). */
function unfilter(raw: Buffer, side: number): Uint8Array | undefined {
  const out = new Uint8Array(side * side);
  for (let y = 0; y < side; y++) {
    const filter = raw[y * (side + 1)]!;
    const line = raw.subarray(y * (side + 1) + 1, (y + 1) * (side + 1));
    const row = y * side;
    for (let x = 0; x < side; x++) {
      const left = x > 0 ? out[row + x - 1]! : 0;
      const up = y > 0 ? out[row - side + x]! : 0;
      const upLeft = x > 0 && y > 0 ? out[row - side + x - 1]! : 0;
      let predictor: number;
      switch (filter) {
        case 0: predictor = 0; break;
        case 1: predictor = left; break;
        case 2: predictor = up; break;
        case 3: predictor = (left + up) >> 1; break;
        case 4: predictor = paeth(left, up, upLeft); break;
        default: return undefined;
      }
      out[row + x] = (line[x]! + predictor) & 0xff;
    }
  }
  return out;
}

function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const pa = Math.abs(p - a);
  const pb = Math.abs(p - b);
  const pc = Math.abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}
