// PNG and JPEG bytes → grayscale pixels, with sharp (libvips). Untrusted bytes are
// checked before any pixel is decoded: only PNG and JPEG signatures are let through
// (libvips reads dozens of formats, SVG among them, which we do not want to expose),
// the declared size is checked against a pixel budget (decompression bombs), and
// libvips is told to fail on truncated or corrupt data rather than guess.
// Plain 8-bit grayscale PNGs of the expected size skip sharp (png-fast-path.ts).
import { crc32 } from 'node:zlib';
import type { default as SharpModule } from 'sharp';
import { InvalidPredictRequestError, UnprocessableInputError } from './errors.ts';
import { IEND, IHDR, PNG_SIGNATURE, decodeGrayPng } from './png-fast-path.ts';

/** A grayscale image: `pixels` is width × height values 0–255, row-major. */
export interface GrayImage {
  width: number;
  height: number;
  pixels: Uint8Array | Float32Array;
}


export interface DecodeOptions {
  /** Largest width × height accepted (decompression-bomb guard). */
  maxPixels: number;
  /** Gray level transparent pixels become: 0 (no ink) for MNIST-form images, 255 (paper) for photos and drawings. */
  background: 0 | 255;
  /** Require exactly this size (checked from the header, before decoding). */
  expectSide?: number;
  /** Shrink larger images to fit this side while decoding (photos need no more for preprocessing). */
  maxSide?: number;
}

let sharpLoaded: Promise<typeof SharpModule> | undefined;
/**
 * sharp (libvips), loaded on first use, with process-wide settings for many small untrusted
 * images: one libvips thread per image (requests already run in parallel on libuv's pool) and
 * no operation cache (it would keep decoded user images in memory). Loaded lazily because the
 * 28×28 grayscale PNGs most callers send never need it (png-fast-path.ts), and it costs the API
 * ~9 MB of RSS (bench/api-rss.ts).
 */
export function loadSharp(): Promise<typeof SharpModule> {
  sharpLoaded ??= import('sharp').then(({ default: sharp }) => {
    sharp.concurrency(1);
    sharp.cache(false);
    return sharp;
  });
  return sharpLoaded;
}

const JPEG_SIGNATURE = Buffer.from([0xff, 0xd8, 0xff]);

export function imageFormat(bytes: Uint8Array): 'png' | 'jpeg' | undefined {
  const starts = (signature: Buffer) => bytes.length >= signature.length && signature.equals(bytes.subarray(0, signature.length));
  return starts(PNG_SIGNATURE) ? 'png' : starts(JPEG_SIGNATURE) ? 'jpeg' : undefined;
}

const reason = (error: unknown) => (error instanceof Error ? error.message : String(error));

/** What a header says about an image, read before any pixel is decoded. */
export interface ImageHeader {
  format: 'png' | 'jpeg';
  width: number;
  height: number;
}

/** A chunk's type as text, for messages. */
const chunkType = (png: Buffer, offset: number) => png.toString('latin1', offset + 4, offset + 8);

/**
 * Walks a PNG's chunks (lengths and CRCs; no inflating) and returns IHDR's size,
 * or throws naming the fault: libpng/spng's own messages are often just "Unknown error".
 * Bytes after IEND are ignored, as decoders do.
 */
export function readPngHeader(bytes: Uint8Array, what: string): ImageHeader {
  const png = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const fault = (text: string) => new InvalidPredictRequestError(`${what} is not a valid PNG: ${text}`);
  let offset = PNG_SIGNATURE.length;
  let width = 0;
  let height = 0;
  for (let index = 0; ; index++) {
    if (offset + 8 > png.length) throw fault(`truncated after ${offset} bytes, before the IEND chunk`);
    const length = png.readUInt32BE(offset);
    // The type's four bytes must be ASCII letters; compared as bytes (no string per chunk on the hot path).
    for (let i = offset + 4; i < offset + 8; i++) {
      const letter = png[i]! | 0x20; // lower case
      if (letter < 0x61 || letter > 0x7a) throw fault(`chunk ${index} at byte ${offset} has an invalid type`);
    }
    if (offset + 12 + length > png.length) throw fault(`truncated: chunk ${index} (${chunkType(png, offset)}) declares ${length} bytes, ${Math.max(0, png.length - offset - 12)} remain`);
    if (crc32(png.subarray(offset + 4, offset + 8 + length)) !== png.readUInt32BE(offset + 8 + length)) {
      throw fault(`chunk ${index} (${chunkType(png, offset)}) has a bad CRC (corrupt data)`);
    }
    const code = png.readUInt32BE(offset + 4);
    if (index === 0) {
      if (code !== IHDR || length !== 13) throw fault('the first chunk is not a 13-byte IHDR');
      width = png.readUInt32BE(offset + 8);
      height = png.readUInt32BE(offset + 12);
      if (width === 0 || height === 0) throw fault(`IHDR declares ${width}×${height} pixels`);
    }
    offset += 12 + length;
    if (code === IEND) return { format: 'png', width, height };
  }
}

/** Format and declared size, from the header only (PNG here, JPEG through libvips on its thread pool). */
export async function readImageHeader(bytes: Uint8Array, what: string): Promise<ImageHeader> {
  const format = imageFormat(bytes);
  if (!format) {
    const head = Buffer.from(bytes.subarray(0, 8)).toString('hex');
    throw new InvalidPredictRequestError(
      bytes.length === 0 ? `${what} is empty; expected a PNG or JPEG image` : `${what} is not a PNG or JPEG image (it starts with bytes ${head})`,
    );
  }
  if (format === 'png') return readPngHeader(bytes, what);
  try {
    // Only the header is read here, so no pixel limit yet: we want to say what size was declared.
    const sharp = await loadSharp();
    const { width, height } = await sharp(bytes, { limitInputPixels: false }).metadata();
    return { format, width, height };
  } catch (error) {
    throw new InvalidPredictRequestError(`${what} is not a readable JPEG image: ${reason(error)}`);
  }
}

/**
 * The fast path: the pixels of a side×side 8-bit grayscale PNG, decoded here without sharp
 * (png-fast-path.ts); undefined for anything else, which sharp decodes. Synchronous, so that a
 * request of such PNGs needs no promise per image.
 */
export function fastPathPixels(bytes: Uint8Array, header: ImageHeader, side: number | undefined): Uint8Array | undefined {
  return side !== undefined && header.format === 'png' && header.width === side && header.height === side ? decodeGrayPng(bytes, side) : undefined;
}

/** Decodes `bytes` (named `what` in error messages, e.g. "instances[2].image") to grayscale. */
export async function decodeImage(bytes: Uint8Array, what: string, options: DecodeOptions, header?: ImageHeader): Promise<GrayImage> {
  const { format, width, height } = header ?? (await readImageHeader(bytes, what));
  const side = options.expectSide;
  const pixels = fastPathPixels(bytes, { format, width, height }, side);
  if (pixels) return { width: side!, height: side!, pixels };
  if (width * height > options.maxPixels) {
    throw new UnprocessableInputError(
      `${what} declares ${width}×${height} pixels; at most ${options.maxPixels} pixels are accepted (PREDICT_MAX_PIXELS)`,
    );
  }
  if (side !== undefined && (width !== side || height !== side)) {
    throw new UnprocessableInputError(
      `${what} is ${width}×${height}; the model takes ${side}×${side} images ` +
        '(add ?preprocess=mnist to have any photo or drawing cropped, resized and centred)',
    );
  }
  const sharp = await loadSharp();
  const image = sharp(bytes, { failOn: 'error', limitInputPixels: options.maxPixels, sequentialRead: true });
  let pipeline = image.autoOrient().flatten({ background: { r: options.background, g: options.background, b: options.background } });
  if (options.maxSide !== undefined) {
    pipeline = pipeline.resize(options.maxSide, options.maxSide, { fit: 'inside', withoutEnlargement: true });
  }
  try {
    const { data, info } = await pipeline.greyscale().raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
    return { width: info.width, height: info.height, pixels: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
  } catch (error) {
    const why = reason(error).trim();
    throw new InvalidPredictRequestError(
      `${what} could not be decoded (truncated or corrupt ${format.toUpperCase()} data)${why && why !== 'Unknown error' ? `: ${why}` : ''}`,
    );
  }
}
