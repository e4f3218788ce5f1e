// The one image shape clients send most: an 8-bit grayscale, non-interlaced 28×28
// PNG. sharp costs about a millisecond per image in fixed overhead (a libvips
// pipeline and a thread-pool hop), more than the forward pass; decoding such a
// PNG here takes microseconds: zlib plus the five scanline filters. Only PNGs
// whose pixels mean exactly their bytes are taken (no transparency, gamma or
// colour profile chunks); anything else, including anything malformed, returns
// undefined and goes to sharp, which then decides and words the error.
import { crc32, inflateSync } from 'node:zlib';

export const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** A chunk type as the big-endian number its four bytes read as (compared as numbers: no string per chunk on the hot path). */
const typeCode = (type: string) => type.split('').reduce((code, char) => (code << 8) | char.charCodeAt(0), 0) >>> 0;
export const IHDR = typeCode('IHDR');
export const IEND = typeCode('IEND');
const IDAT = typeCode('IDAT');
/** Chunks that carry no pixel meaning; any other ancillary chunk sends the image to sharp. */
const INERT_CODES = new Set(['tEXt', 'zTXt', 'iTXt', 'tIME', 'pHYs'].map(typeCode));

/** The pixels (row-major, one byte each) of a side×side 8-bit grayscale PNG, or undefined. */
export function decodeGrayPng(bytes: Uint8Array, side: number): Uint8Array | undefined {
  const png = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (png.length < PNG_SIGNATURE.length || PNG_SIGNATURE.compare(png, 0, PNG_SIGNATURE.length) !== 0) return undefined;
  // Where the image data is: one IDAT chunk (what encoders write for an image this small) needs no copy.
  let idatStart = -1;
  let idatEnd = -1;
  let idat: Buffer[] | undefined;
  let offset = PNG_SIGNATURE.length;
  let sawHeader = false;
  for (;;) {
    if (offset + 12 > png.length) return undefined;
    const length = png.readUInt32BE(offset);
    const end = offset + 12 + length;
    if (end > png.length) return undefined;
    if (crc32(png.subarray(offset + 4, offset + 8 + length)) !== png.readUInt32BE(offset + 8 + length)) return undefined;
    const type = png.readUInt32BE(offset + 4);
    const data = offset + 8;
    if (!sawHeader) {
      // IHDR: width, height, bit depth 8, colour type 0 (gray), compression 0, filter 0, interlace 0.
      if (type !== IHDR || length !== 13) return undefined;
      if (png.readUInt32BE(data) !== side || png.readUInt32BE(data + 4) !== side) return undefined;
      if (png[data + 8] !== 8 || png[data + 9] !== 0 || png[data + 10] !== 0 || png[data + 11] !== 0 || png[data + 12] !== 0) return undefined;
      sawHeader = true;
    } else if (type === IDAT) {
      if (idatStart < 0) [idatStart, idatEnd] = [data, data + length];
      else (idat ??= [png.subarray(idatStart, idatEnd)]).push(png.subarray(data, data + length));
    } else if (type === IEND) {
      offset = end;
      break;
    } else if (!INERT_CODES.has(type)) {
      return undefined;
    }
    offset = end;
  }
  if (offset !== png.length || idatStart < 0) return undefined; // trailing bytes or no data: let sharp judge
  const stride = side + 1; // a filter-type byte before each scanline
  let raw: Buffer;
  try {
    // chunkSize: zlib's output buffer; the default 16 KB would be a fresh allocation per image
    // (a slice of Buffer's shared pool instead), garbage that piles up in the malloc heap under load.
    raw = inflateSync(idat ? Buffer.concat(idat) : png.subarray(idatStart, idatEnd), { maxOutputLength: side * stride, chunkSize: Math.max(64, side * stride) });
  } catch {
    return undefined; // corrupt or oversized data: sharp decodes it and reports what is wrong
  }
  return raw.length === side * stride ? unfilter(raw, side) : undefined;
}

/** Reverses PNG's per-scanline filters (one byte per pixel); indexes the bytes directly, allocating only the output. */
function unfilter(raw: Uint8Array, side: number): Uint8Array | undefined {
  const out = new Uint8Array(side * side);
  for (let y = 0; y < side; y++) {
    const filter = raw[y * (side + 1)]!;
    const line = y * (side + 1) + 1;
    const row = y * side;
    const above = row - side; // the previous row's start (unused on the first row)
    switch (filter) {
      case 0:
        for (let x = 0; x < side; x++) out[row + x] = raw[line + x]!;
        break;
      case 1:
        for (let x = 0; x < side; x++) out[row + x] = raw[line + x]! + (x > 0 ? out[row + x - 1]! : 0);
        break;
      case 2:
        for (let x = 0; x < side; x++) out[row + x] = raw[line + x]! + (y > 0 ? out[above + x]! : 0);
        break;
      case 3:
        for (let x = 0; x < side; x++) out[row + x] = raw[line + x]! + (((x > 0 ? out[row + x - 1]! : 0) + (y > 0 ? out[above + x]! : 0)) >> 1);
        break;
      case 4:
        for (let x = 0; x < side; x++) {
          const left = x > 0 ? out[row + x - 1]! : 0;
          const up = y > 0 ? out[above + x]! : 0;
          const upLeft = x > 0 && y > 0 ? out[above + x - 1]! : 0;
          out[row + x] = raw[line + x]! + paeth(left, up, upLeft);
        }
        break;
      default:
        return undefined;
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
