// Reader and writer for the IDX files MNIST-style data sets ship in
// (http://yann.lecun.com/exdb/mnist/): a big-endian header, then raw uint8 data.
// Files may be gzip-compressed; we look at the bytes, not the file name.
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { gunzip as gunzipCallback, gzipSync } from 'node:zlib';
import { writeFileAtomic } from '../lib/atomic-write.ts';
import { IMAGE_SIDE, NUM_CLASSES } from '../model/spec.ts';

const gunzip = promisify(gunzipCallback);


/** Magic numbers: 0x08 = unsigned byte data, last byte = number of dimensions. */
export const IDX_IMAGES_MAGIC = 0x00000803;
export const IDX_LABELS_MAGIC = 0x00000801;
const IMAGES_HEADER_BYTES = 16;
const LABELS_HEADER_BYTES = 8;

/** A file that is not a valid MNIST-style IDX file; `file` names it, `problem` says what is wrong. */
export class IdxFormatError extends Error {
  override name = 'IdxFormatError';
  readonly file: string;
  readonly problem: string;
  constructor(file: string, problem: string) {
    super(`${file}: ${problem}`);
    this.file = file;
    this.problem = problem;
  }
}

export interface IdxImages {
  count: number;
  rows: number;
  cols: number;
  /** count × rows × cols bytes, 0–255, row-major. */
  pixels: Uint8Array;
}

function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/** Reads a file and gunzips it when it starts with the gzip magic bytes. */
export async function readMaybeGzip(file: string): Promise<Uint8Array> {
  const raw = await readFile(file);
  if (!isGzip(raw)) return raw;
  try {
    return await gunzip(raw);
  } catch (error) {
    throw new IdxFormatError(file, `corrupt gzip data (${(error as Error).message})`);
  }
}

function readHeader(bytes: Uint8Array, file: string, headerBytes: number, expectedMagic: number, what: string): DataView {
  if (bytes.length < headerBytes) {
    throw new IdxFormatError(file, `too short for an IDX ${what} header: ${bytes.length} bytes, need ${headerBytes}`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = view.getUint32(0); // big-endian
  if (magic !== expectedMagic) {
    throw new IdxFormatError(file, `bad magic number 0x${hex(magic)}, expected 0x${hex(expectedMagic)} (IDX ${what})`);
  }
  return view;
}

function checkLength(bytes: Uint8Array, file: string, expected: number, description: string): void {
  if (bytes.length < expected) {
    throw new IdxFormatError(file, `truncated: header declares ${description} (${expected} bytes) but the file has ${bytes.length}`);
  }
  if (bytes.length > expected) {
    throw new IdxFormatError(file, `${bytes.length - expected} unexpected bytes after ${description} (${expected} bytes expected)`);
  }
}

/** Parses (already decompressed) IDX image bytes; images must be 28×28. */
export function parseIdxImages(bytes: Uint8Array, file: string): IdxImages {
  const view = readHeader(bytes, file, IMAGES_HEADER_BYTES, IDX_IMAGES_MAGIC, 'images');
  const count = view.getUint32(4);
  const rows = view.getUint32(8);
  const cols = view.getUint32(12);
  if (rows !== IMAGE_SIDE || cols !== IMAGE_SIDE) {
    throw new IdxFormatError(file, `images are ${rows}×${cols}, expected ${IMAGE_SIDE}×${IMAGE_SIDE}`);
  }
  checkLength(bytes, file, IMAGES_HEADER_BYTES + count * rows * cols, `${count} images of ${rows}×${cols}`);
  return { count, rows, cols, pixels: bytes.subarray(IMAGES_HEADER_BYTES) };
}

/** Parses (already decompressed) IDX label bytes; labels must be 0–9. */
export function parseIdxLabels(bytes: Uint8Array, file: string): Uint8Array {
  const view = readHeader(bytes, file, LABELS_HEADER_BYTES, IDX_LABELS_MAGIC, 'labels');
  const count = view.getUint32(4);
  checkLength(bytes, file, LABELS_HEADER_BYTES + count, `${count} labels`);
  const labels = bytes.subarray(LABELS_HEADER_BYTES);
  for (let i = 0; i < labels.length; i++) {
    const label = labels[i]!;
    if (label >= NUM_CLASSES) {
      throw new IdxFormatError(file, `label ${label} at index ${i} is outside 0–${NUM_CLASSES - 1}`);
    }
  }
  return labels;
}

export async function readIdxImages(file: string): Promise<IdxImages> {
  return parseIdxImages(await readMaybeGzip(file), file);
}

export async function readIdxLabels(file: string): Promise<Uint8Array> {
  return parseIdxLabels(await readMaybeGzip(file), file);
}

/**
 * What to put in an IDX file. Header fields can be overridden so tests can
 * produce deliberately malformed files (wrong dimensions, wrong count, bad magic).
 */
export type IdxContent =
  | { kind: 'images'; pixels: Uint8Array; count?: number; rows?: number; cols?: number; magic?: number }
  | { kind: 'labels'; labels: Uint8Array; count?: number; magic?: number };

export function encodeIdx(content: IdxContent): Buffer {
  if (content.kind === 'images') {
    const rows = content.rows ?? IMAGE_SIDE;
    const cols = content.cols ?? IMAGE_SIDE;
    const header = Buffer.alloc(IMAGES_HEADER_BYTES);
    header.writeUInt32BE(content.magic ?? IDX_IMAGES_MAGIC, 0);
    header.writeUInt32BE(content.count ?? Math.floor(content.pixels.length / (rows * cols)), 4);
    header.writeUInt32BE(rows, 8);
    header.writeUInt32BE(cols, 12);
    return Buffer.concat([header, content.pixels]);
  }
  const header = Buffer.alloc(LABELS_HEADER_BYTES);
  header.writeUInt32BE(content.magic ?? IDX_LABELS_MAGIC, 0);
  header.writeUInt32BE(content.count ?? content.labels.length, 4);
  return Buffer.concat([header, content.labels]);
}

/** Writes an IDX file (gzip-compressed when `gzip` is set), atomically. */
export async function writeIdx(file: string, content: IdxContent, options: { gzip?: boolean } = {}): Promise<void> {
  const bytes = encodeIdx(content);
  await writeFileAtomic(file, options.gzip ? gzipSync(bytes) : bytes);
}

function hex(value: number): string {
  return value.toString(16).padStart(8, '0');
}
