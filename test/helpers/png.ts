// PNG files built chunk by chunk, for tests and benches that need PNGs no encoder
// writes: decompression bombs, bad CRCs, missing or extra chunks, split IDATs.
import { crc32, deflateSync } from 'node:zlib';

export const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** One chunk: length, type, data, CRC (off by one with badCrc). */
export function chunk(type: string, data: Buffer, badCrc = false): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const typed = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE((crc32(typed) + (badCrc ? 1 : 0)) >>> 0);
  return Buffer.concat([length, typed, crc]);
}

/** IHDR data; the defaults are 8-bit grayscale. */
export function ihdr(width: number, height: number, depth = 8, colour = 0): Buffer {
  const data = Buffer.alloc(13);
  data.writeUInt32BE(width, 0);
  data.writeUInt32BE(height, 4);
  data[8] = depth;
  data[9] = colour;
  return data;
}

/** A gray PNG from parts; the defaults make a valid, all-black width × height image (up to 64 rows of data). */
export function png(width: number, height: number, options: { idat?: Buffer; badCrc?: 'IHDR' | 'IDAT'; noIend?: boolean; header?: Buffer } = {}): Buffer {
  const idat = options.idat ?? deflateSync(Buffer.alloc(Math.min((width + 1) * Math.min(height, 64), 1 << 20)));
  return Buffer.concat([
    PNG_SIGNATURE,
    chunk('IHDR', options.header ?? ihdr(width, height), options.badCrc === 'IHDR'),
    chunk('IDAT', idat, options.badCrc === 'IDAT'),
    ...(options.noIend ? [] : [chunk('IEND', Buffer.alloc(0))]),
  ]);
}
