// A corpus of hostile and careless requests against /v1/predict, /v1/jobs and the
// model routes, sent byte for byte over real sockets. Each must get a 4xx
// problem+json whose detail names the fault, in bounded time, and /healthz must
// answer quickly after each one. Case classes are listed in CLASSES below.
import { deflateSync } from 'node:zlib';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { waitFor } from './helpers/jobs.ts';
import { rawRequest, type RawRequest } from './helpers/raw-http.ts';
import { pngOf, startServingApi, strokePixels, type ServingApi } from './helpers/serving.ts';
import { PNG_SIGNATURE, chunk, ihdr, png } from './helpers/png.ts';

/** Generous bounds: the machine is shared; the point is "answers", not "fast" (bench/ measures speed). */
const ANSWER_WITHIN_MS = 15_000;
const HEALTHZ_WITHIN_MS = 3_000;

/** Formats we do not accept, by their real signatures. */
const OTHER_FORMATS: Record<string, Buffer> = {
  GIF: Buffer.from('GIF89a\x1c\x00\x1c\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x1c\x00\x1c\x00\x00\x02\x02D\x01\x00;', 'latin1'),
  BMP: Buffer.concat([Buffer.from('BM', 'latin1'), Buffer.alloc(60)]),
  WebP: Buffer.concat([Buffer.from('RIFF\x24\x00\x00\x00WEBPVP8 ', 'latin1'), Buffer.alloc(32)]),
  'TIFF (little-endian)': Buffer.concat([Buffer.from([0x49, 0x49, 0x2a, 0x00, 0x08, 0, 0, 0]), Buffer.alloc(32)]),
  'TIFF (big-endian)': Buffer.concat([Buffer.from([0x4d, 0x4d, 0x00, 0x2a, 0, 0, 0, 8]), Buffer.alloc(32)]),
  SVG: Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="28" height="28"><rect width="28" height="28"/></svg>'),
  'SVG with an external entity': Buffer.from('<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY x SYSTEM "file:///etc/passwd">]><svg>&x;</svg>'),
  AVIF: Buffer.concat([Buffer.from([0, 0, 0, 0x1c]), Buffer.from('ftypavif', 'latin1'), Buffer.alloc(32)]),
  HEIC: Buffer.concat([Buffer.from([0, 0, 0, 0x18]), Buffer.from('ftypheic', 'latin1'), Buffer.alloc(32)]),
  PDF: Buffer.from('%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\n', 'latin1'),
  ICO: Buffer.concat([Buffer.from([0, 0, 1, 0, 1, 0]), Buffer.alloc(32)]),
  'JPEG 2000': Buffer.concat([Buffer.from([0, 0, 0, 0x0c, 0x6a, 0x50, 0x20, 0x20, 0x0d, 0x0a, 0x87, 0x0a]), Buffer.alloc(32)]),
  'JPEG XL': Buffer.concat([Buffer.from([0xff, 0x0a]), Buffer.alloc(32)]),
  PSD: Buffer.concat([Buffer.from('8BPS', 'latin1'), Buffer.alloc(32)]),
  'gzip of a PNG': deflateSync(Buffer.from('not really')),
  'PNG signature only': PNG_SIGNATURE,
};

function multipart(boundary: string, parts: { name: string; filename?: string; type?: string; body: Buffer | string }[], close = true): Buffer {
  const pieces: Buffer[] = [];
  for (const part of parts) {
    pieces.push(
      Buffer.from(
        `--${boundary}\r\nContent-Disposition: form-data; name="${part.name}"${part.filename ? `; filename="${part.filename}"` : ''}\r\n` +
          `${part.type ? `Content-Type: ${part.type}\r\n` : ''}\r\n`,
      ),
      Buffer.from(part.body),
      Buffer.from('\r\n'),
    );
  }
  if (close) pieces.push(Buffer.from(`--${boundary}--\r\n`));
  return Buffer.concat(pieces);
}

interface Case {
  /** Case class (see CLASSES) and what this one is. */
  name: string;
  request: RawRequest;
  /** The detail must match this (it names the fault). */
  detail?: RegExp;
  status?: number;
}

/** Every class of hostile input covered; each case's name starts with one of these. */
const CLASSES = [
  'malformed JSON',
  'numbers out of range',
  'wrong types',
  'deep nesting',
  'prototype keys',
  'unaccepted image format',
  'truncated or corrupt PNG',
  'truncated or corrupt JPEG',
  'decompression bomb',
  'pixel budget',
  'huge instance count',
  'multipart',
  'oversized body',
  'wrong media type',
  'path traversal',
  'bad query',
  'HTTP framing',
  'oversized URL or headers',
  'wrong method',
  'malformed escapes',
] as const;

let api: ServingApi;
let version: string;

const json = (path: string, body: string | Buffer, extra: Partial<RawRequest> = {}): RawRequest => ({
  method: 'POST',
  path,
  headers: { 'content-type': 'application/json' },
  body,
  ...extra,
});
const image = (body: Buffer, type = 'image/png', path = '/v1/predict'): RawRequest => ({ method: 'POST', path, headers: { 'content-type': type }, body });
const b64 = (bytes: Buffer) => JSON.stringify({ image: bytes.toString('base64') });

async function corpus(): Promise<Case[]> {
  const goodPng = await pngOf(strokePixels(2));
  const jpeg = await sharp(Buffer.from(strokePixels(2)), { raw: { width: 28, height: 28, channels: 1 } }).jpeg().toBuffer();
  // 4800×4800 gray in ~23 KB: allowed alone (PREDICT_MAX_PIXELS), 17 of them fit in one 1 MB JSON body.
  const bigPhoto = png(4800, 4800, { idat: deflateSync(Buffer.alloc(4801 * 4800), { level: 9 }) });
  const zeros = Array(784).fill(0);
  const cases: Case[] = [];
  const add = (name: string, request: RawRequest, detail?: RegExp, status?: number) =>
    cases.push({ name, request, ...(detail ? { detail } : {}), ...(status ? { status } : {}) });

  // malformed JSON, to predict and to jobs
  for (const [what, text] of [
    ['truncated', '{"pixels":[1,2'],
    ['trailing comma', '{"epochs":1,}'],
    ['single quotes', "{'epochs':1}"],
    ['NaN literal', '{"epochs":NaN}'],
    ['bare word', 'hello'],
    ['two documents', '{}{}'],
    ['a lone brace', '{'],
    ['invalid UTF-8', Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d])],
    ['a control character in a string', '{"name":"a\u0001b"}'],
    ['an unterminated string', '{"name":"abc'],
  ] as const) {
    add(`malformed JSON: ${what} (predict)`, json('/v1/predict', what === 'trailing comma' ? '{"pixels":[1,],}' : text), /JSON|must|exactly one/);
    add(`malformed JSON: ${what} (jobs)`, json('/v1/jobs', text), /JSON|name|Invalid|invalid/);
  }
  // numbers out of range
  for (const [field, value] of [
    ['epochs', '0'], ['epochs', '-1'], ['epochs', '51'], ['epochs', '1e9'], ['epochs', '1.5'], ['epochs', '1e999'],
    ['batchSize', '0'], ['batchSize', '99999999999999999999'], ['learningRate', '-0.1'], ['learningRate', '0'],
    ['momentum', '1'], ['seed', '-5'], ['limit', '0'], ['targetAccuracy', '2'],
  ] as const) {
    add(`numbers out of range: ${field}=${value}`, json('/v1/jobs', `{"${field}":${value}}`), new RegExp(field), 422);
  }
  add('numbers out of range: pixel 256', json('/v1/predict', JSON.stringify({ pixels: [...zeros.slice(1), 256] })), /256/, 422);
  add('numbers out of range: pixel -1e308', json('/v1/predict', `{"pixels":[-1e308${',0'.repeat(783)}]}`), /pixels\[0\]/, 422);
  add('numbers out of range: pixel 1e999', json('/v1/predict', `{"pixels":[1e999${',0'.repeat(783)}]}`), /Infinity/, 422);
  // wrong types
  for (const [body, pattern] of [
    ['{"epochs":"5"}', /epochs/], ['{"dataset":5}', /dataset/], ['{"dataset":"cifar-10"}', /dataset/], ['{"name":[]}', /name/],
    ['{"epocs":5}', /epocs/], ['[1,2,3]', /body/i], ['"a string"', /body/i], ['true', /body/i], ['42', /body/i],
  ] as const) {
    add(`wrong types: jobs ${body}`, json('/v1/jobs', body), pattern);
  }
  for (const [body, pattern] of [
    [{ pixels: 'abc' }, /array/], [{ pixels: [...zeros.slice(1), '0'] }, /must be a number/], [{ pixels: [...zeros.slice(1), null] }, /must be a number/],
    [{ image: 42 }, /base64/], [{ instances: 'x' }, /array/], [{ instances: [1] }, /object/], [{}, /exactly one/], [[zeros], /object/],
    [{ pixels: zeros, extra: 1 }, /unknown field/],
  ] as const) {
    add(`wrong types: predict ${JSON.stringify(body).slice(0, 40)}`, json('/v1/predict', JSON.stringify(body)), pattern);
  }
  // deep nesting
  add('deep nesting: 100,000 arrays (predict)', json('/v1/predict', '['.repeat(100_000) + ']'.repeat(100_000)), /nested/);
  add('deep nesting: 100,000 arrays (jobs)', json('/v1/jobs', '['.repeat(100_000) + ']'.repeat(100_000)));
  add('deep nesting: 50,000 objects (jobs)', json('/v1/jobs', '{"a":'.repeat(50_000) + '1' + '}'.repeat(50_000)));
  add('deep nesting: instances inside instances', json('/v1/predict', JSON.stringify({ instances: [{ instances: [{ pixels: zeros }] }] })), /unknown field|exactly one/);
  // prototype keys
  for (const [where, path, body] of [
    ['jobs __proto__', '/v1/jobs', '{"__proto__":{"epochs":1}}'],
    ['jobs constructor.prototype', '/v1/jobs', '{"constructor":{"prototype":{"x":1}}}'],
    ['jobs escaped __proto__', '/v1/jobs', '{"\\u005f_proto__":{"admin":true}}'],
    ['predict __proto__', '/v1/predict', '{"__proto__":{"pixels":[]}}'],
    ['predict nested __proto__', '/v1/predict', `{"instances":[{"pixels":[${zeros.join(',')}],"__proto__":{}}]}`],
    ['predict constructor.prototype', '/v1/predict', '{"constructor":{"prototype":{}}}'],
    ['promote __proto__', '/v1/models/latest/promote', '{"__proto__":{}}'],
  ] as const) {
    add(`prototype keys: ${where}`, json(path, body), /refused on purpose/, 400);
  }
  // formats we do not accept: as a raw body, as base64 JSON, as a multipart file
  for (const [format, bytes] of Object.entries(OTHER_FORMATS)) {
    add(`unaccepted image format: ${format} as image/png`, image(bytes), /not a PNG or JPEG|not a valid PNG|truncated/);
    add(`unaccepted image format: ${format} as base64`, json('/v1/predict', b64(bytes)), /not a PNG or JPEG|not a valid PNG|truncated/);
  }
  for (const format of ['GIF', 'SVG', 'WebP']) {
    const body = multipart('b0und', [{ name: 'file', filename: 'x', type: 'image/png', body: OTHER_FORMATS[format]! }]);
    add(`unaccepted image format: ${format} as multipart`, { method: 'POST', path: '/v1/predict', headers: { 'content-type': 'multipart/form-data; boundary=b0und' }, body }, /not a PNG or JPEG/);
  }
  add('unaccepted image format: image/gif media type', image(OTHER_FORMATS.GIF!, 'image/gif'), /Content-Type/, 415);
  add('unaccepted image format: image/svg+xml media type', image(OTHER_FORMATS.SVG!, 'image/svg+xml'), /Content-Type/, 415);
  // truncated or corrupt PNG
  for (const cut of [9, 20, 33, 45, goodPng.length - 12, goodPng.length - 1]) {
    add(`truncated or corrupt PNG: cut at ${cut} bytes`, image(goodPng.subarray(0, cut)), /truncated|not a valid PNG/);
  }
  add('truncated or corrupt PNG: bad IHDR CRC', image(png(28, 28, { badCrc: 'IHDR' })), /bad CRC/);
  add('truncated or corrupt PNG: bad IDAT CRC', image(png(28, 28, { badCrc: 'IDAT' })), /bad CRC/);
  add('truncated or corrupt PNG: bad CRC, base64', json('/v1/predict', b64(png(28, 28, { badCrc: 'IDAT' }))), /bad CRC/);
  add('truncated or corrupt PNG: no IEND', image(png(28, 28, { noIend: true })), /truncated/);
  add('truncated or corrupt PNG: IDAT not zlib', image(png(28, 28, { idat: Buffer.from('definitely not deflate') })), /could not be decoded/);
  add('truncated or corrupt PNG: IDAT too short', image(png(28, 28, { idat: deflateSync(Buffer.alloc(10)) })), /could not be decoded/);
  add('truncated or corrupt PNG: 0×0', image(png(0, 0)), /0×0/);
  add('truncated or corrupt PNG: bit depth 7', image(png(28, 28, { header: ihdr(28, 28, 7) })), /decoded|valid|readable/);
  add('truncated or corrupt PNG: colour type 9', image(png(28, 28, { header: ihdr(28, 28, 8, 9) })), /decoded|valid|readable/);
  add('truncated or corrupt PNG: IHDR not first', image(Buffer.concat([PNG_SIGNATURE, chunk('IEND', Buffer.alloc(0))])), /IHDR/);
  // truncated or corrupt JPEG
  add('truncated or corrupt JPEG: SOI only', image(Buffer.from([0xff, 0xd8, 0xff]), 'image/jpeg'), /JPEG/);
  add('truncated or corrupt JPEG: cut in half', image(jpeg.subarray(0, Math.floor(jpeg.length / 2)), 'image/jpeg'), /JPEG/);
  add('truncated or corrupt JPEG: garbage after the header', image(Buffer.concat([jpeg.subarray(0, 20), Buffer.alloc(200, 0xab)]), 'image/jpeg'), /JPEG/);
  add('truncated or corrupt JPEG: as base64', json('/v1/predict', b64(jpeg.subarray(0, 100))), /JPEG/);
  // decompression bombs: sizes declared in headers, a few bytes of data
  add('decompression bomb: PNG declaring 100000×100000', image(png(100_000, 100_000)), /PREDICT_MAX_PIXELS/, 422);
  add('decompression bomb: PNG declaring 2^31×2^31', image(png(2 ** 31 - 1, 2 ** 31 - 1)), /PREDICT_MAX_PIXELS/, 422);
  add('decompression bomb: PNG 5000×5000 with ?preprocess', image(png(5000, 5000), 'image/png', '/v1/predict?preprocess=mnist'), /PREDICT_MAX_PIXELS/, 422);
  const bombJpeg = Buffer.from(jpeg);
  const sof = bombJpeg.indexOf(Buffer.from([0xff, 0xc0]));
  bombJpeg.writeUInt16BE(65_000, sof + 5);
  bombJpeg.writeUInt16BE(65_000, sof + 7);
  add('decompression bomb: JPEG declaring 65000×65000', image(bombJpeg, 'image/jpeg', '/v1/predict?preprocess=mnist'), /PREDICT_MAX_PIXELS/, 422);
  // the per-request pixel budget: several images, each allowed, too many together
  add(
    'pixel budget: 17 images of 4800×4800 in one JSON body',
    json('/v1/predict?preprocess=mnist', JSON.stringify({ instances: Array.from({ length: 17 }, () => ({ image: bigPhoto.toString('base64') })) })),
    /PREDICT_MAX_REQUEST_PIXELS/,
    413,
  );
  add(
    'pixel budget: 2 images of 4800×4800 as multipart',
    {
      method: 'POST',
      path: '/v1/predict?preprocess=mnist',
      headers: { 'content-type': 'multipart/form-data; boundary=zz' },
      body: multipart('zz', [0, 1].map((i) => ({ name: `f${i}`, filename: `${i}.png`, type: 'image/png', body: bigPhoto }))),
    },
    /PREDICT_MAX_REQUEST_PIXELS/,
    413,
  );
  // huge instance counts
  add('huge instance count: 65', json('/v1/predict', JSON.stringify({ instances: Array(65).fill({ pixels: [] }) })), /PREDICT_MAX_INSTANCES/, 413);
  add('huge instance count: 100,000 empty objects', json('/v1/predict', `{"instances":[${Array(100_000).fill('{}').join(',')}]}`), /PREDICT_MAX_INSTANCES/, 413);
  add('huge instance count: 65 files', {
    method: 'POST',
    path: '/v1/predict',
    headers: { 'content-type': 'multipart/form-data; boundary=q' },
    body: multipart('q', Array.from({ length: 65 }, (_, i) => ({ name: `f${i}`, filename: `${i}.png`, type: 'image/png', body: goodPng }))),
  }, /PREDICT_MAX_INSTANCES|too many/, 413);
  // multipart edge cases
  const mp = (contentType: string, body: Buffer | string): RawRequest => ({ method: 'POST', path: '/v1/predict', headers: { 'content-type': contentType }, body });
  add('multipart: no boundary parameter', mp('multipart/form-data', 'x'), /multipart/);
  add('multipart: a boundary never opened', mp('multipart/form-data; boundary=zzz', 'x'), /multipart/);
  add('multipart: an empty body', mp('multipart/form-data; boundary=zzz', ''), /multipart/);
  add('multipart: only the closing boundary', mp('multipart/form-data; boundary=zzz', '--zzz--\r\n'), /no image files|multipart/);
  add('multipart: a field instead of a file', mp('multipart/form-data; boundary=zzz', multipart('zzz', [{ name: 'pixels', body: '[0]' }])), /not a file/);
  add('multipart: never closed', mp('multipart/form-data; boundary=zzz', multipart('zzz', [{ name: 'f', filename: 'a.png', type: 'image/png', body: goodPng }], false)), /multipart/);
  add('multipart: cut inside a part', mp('multipart/form-data; boundary=zzz', multipart('zzz', [{ name: 'f', filename: 'a.png', body: goodPng }]).subarray(0, 80)), /multipart|truncated|not a valid PNG/);
  add('multipart: boundary mismatch', mp('multipart/form-data; boundary=aaa', multipart('bbb', [{ name: 'f', filename: 'a.png', body: goodPng }])), /multipart/);
  add('multipart: part without headers', mp('multipart/form-data; boundary=zzz', '--zzz\r\n\r\nabc\r\n--zzz--\r\n'), /multipart|not a file/);
  add('multipart: 10 KB part header', mp('multipart/form-data; boundary=zzz', `--zzz\r\nContent-Disposition: form-data; name="${'n'.repeat(10_000)}"; filename="a"\r\n\r\nabc\r\n--zzz--\r\n`), /multipart|not a PNG/);
  add('multipart: on /v1/jobs', { ...mp('multipart/form-data; boundary=zzz', multipart('zzz', [{ name: 'epochs', body: '1' }])), path: '/v1/jobs' }, /Content-Type|media type|multipart/, 415);
  // oversized bodies
  add('oversized body: 2 MB JSON to predict', json('/v1/predict', `{"pixels":[${'0,'.repeat(1_000_000)}0]}`), /BODY_LIMIT/, 413);
  add('oversized body: 2 MB JSON to jobs', json('/v1/jobs', `{"name":"${'a'.repeat(2_000_000)}"}`), /BODY_LIMIT|larger/, 413);
  add('oversized body: 2 MB image', image(Buffer.concat([goodPng, Buffer.alloc(2_000_000)])), /BODY_LIMIT|larger/, 413);
  add('oversized body: Content-Length of 10 GB', { method: 'POST', path: '/v1/predict', headers: { 'content-type': 'image/png', 'content-length': '10000000000' }, body: '' }, /BODY_LIMIT|larger/, 413);
  // wrong media types
  add('wrong media type: text/plain to predict', { method: 'POST', path: '/v1/predict', headers: { 'content-type': 'text/plain' }, body: 'hello' }, /Content-Type/, 415);
  add('wrong media type: application/xml to jobs', { method: 'POST', path: '/v1/jobs', headers: { 'content-type': 'application/xml' }, body: '<a/>' }, /JSON|media type/, 415);
  add('wrong media type: form-encoded to jobs', { method: 'POST', path: '/v1/jobs', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'epochs=1' }, /form-encoded/, 415);
  add('wrong media type: no Content-Type with a body', { method: 'POST', path: '/v1/predict', body: 'abc' }, /Content-Type|media type/, 415);
  // path traversal in versions and ids
  for (const path of [
    '/v1/models/..%2F..%2Fetc%2Fpasswd/model.json',
    '/v1/models/%2e%2e/weights.bin',
    '/v1/models/..%252F..%252Fetc/model.json',
    '/v1/models/latest%00/model.json',
    '/v1/models/v1-..%2F..%2F/weights.bin',
    '/v1/models/%2Fetc%2Fpasswd',
    '/v1/jobs/..%2F..%2Fdump',
    '/v1/jobs/%00',
    '/v1/predict?model=..%2F..%2Fetc%2Fpasswd',
  ]) {
    add(`path traversal: ${path}`, path.startsWith('/v1/predict') ? json(path, JSON.stringify({ pixels: zeros })) : { path }, /version|route|not found|Job|job|id/i);
  }
  add('path traversal: a 300-character version', { path: `/v1/models/${'v'.repeat(300)}` }, /path segment|too long/, 414);
  add('path traversal: a 201-character job id', { path: `/v1/jobs/${'j'.repeat(201)}` }, /id|path segment/);
  // bad query
  add('bad query: ?preprocess=yes', json('/v1/predict?preprocess=yes', JSON.stringify({ pixels: zeros })), /preprocess/, 400);
  add('bad query: unknown parameter', json('/v1/predict?foo=1', JSON.stringify({ pixels: zeros })), /foo/, 400);
  add('bad query: ?model=latest&model=v2', json('/v1/predict?model=latest&model=v2', JSON.stringify({ pixels: zeros })), /model/, 400);
  add('bad query: jobs ?limit=1000', { path: '/v1/jobs?limit=1000' }, /limit/, 400);
  add('bad query: jobs ?state=exploded', { path: '/v1/jobs?state=exploded' }, /state/, 400);
  // HTTP framing
  add('HTTP framing: Content-Length and Transfer-Encoding together', {
    path: '/v1/predict',
    verbatim: `POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\n`,
  }, /malformed HTTP/, 400);
  add('HTTP framing: invalid chunk size', {
    path: '/v1/predict',
    verbatim: `POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\nabc\r\n0\r\n\r\n`,
  }, /malformed HTTP/, 400);
  add('HTTP framing: negative Content-Length', { path: '/v1/predict', verbatim: 'POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n' }, /malformed HTTP/, 400);
  add('HTTP framing: invalid method', { path: '/', verbatim: 'BR3W /v1/predict HTTP/1.1\r\nHost: x\r\n\r\n' }, /malformed HTTP/, 400);
  add('HTTP framing: NUL in a header', { path: '/', verbatim: 'GET /v1/models HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n' }, /malformed HTTP/, 400);
  // oversized URL or headers: answered without echoing them
  add('oversized URL or headers: 10 KB URL', { path: `/v1/${'a'.repeat(10_000)}` }, /route/, 404);
  add('oversized URL or headers: 10 KB query parameter name', json(`/v1/predict?${'a'.repeat(10_000)}=1`, JSON.stringify({ pixels: zeros })), /unknown/, 400);
  add('oversized URL or headers: 20 KB URL', { path: `/v1/${'a'.repeat(20_000)}` }, /headers/, 431);
  add('oversized URL or headers: 20 KB header', { path: '/v1/models', headers: { 'x-big': 'b'.repeat(20_000) } }, /headers/, 431);
  add('oversized URL or headers: 100 KB cookie', { path: '/v1/models', headers: { cookie: `a=${'c'.repeat(100_000)}` } }, /headers/, 431);
  // wrong method: unmatched method and path pairs are 404 problems, never a handler
  add('wrong method: PUT /v1/predict', json('/v1/predict', JSON.stringify({ pixels: zeros }), { method: 'PUT' }), /no route PUT/, 404);
  add('wrong method: DELETE /v1/jobs', { method: 'DELETE', path: '/v1/jobs' }, /no route DELETE/, 404);
  add('wrong method: PATCH /v1/models/latest', json('/v1/models/latest', '{}', { method: 'PATCH' }), /no route PATCH/, 404);
  add('wrong method: GET /v1/predict', { path: '/v1/predict' }, /no route GET/, 404);
  // malformed escapes in the path: the router cannot decode them
  add('malformed escapes: truncated UTF-8 escape in a version', { path: '/v1/models/%E0%A4%A/model.json' }, /percent-encoding|version/, 400);
  add('malformed escapes: %ZZ in a job id', { path: '/v1/jobs/%ZZ' }, /percent-encoding|id/, 400);
  add('malformed escapes: lone % in a job id', { path: '/v1/jobs/abc%' }, /percent-encoding|id/, 400);
  return cases;
}

beforeAll(async () => {
  api = await startServingApi({ redisUrl: inject('redisUrl'), env: { API_KEYS: 'corpus-key', REQUEST_TIMEOUT_MS: '5000', HEADERS_TIMEOUT_MS: '2000' } });
  ({ version } = await api.publishAndAnnounce(5));
  await waitFor('the model to load', async () => (await (await fetch(`${api.url}/readyz`)).json()).model?.version === version);
});

afterAll(async () => {
  await api?.close();
});

describe('hostile-input corpus', () => {
  it('answers every case 4xx problem+json naming the fault, in bounded time, and /healthz stays quick after each', async () => {
    const cases = await corpus();
    expect(cases.length).toBeGreaterThanOrEqual(100);
    const classesSeen = new Set(cases.map((c) => c.name.split(':')[0]));
    expect([...classesSeen].sort()).toEqual([...CLASSES].sort());

    const failures: string[] = [];
    for (const testCase of cases) {
      const request = { ...testCase.request, headers: { 'x-api-key': 'corpus-key', ...testCase.request.headers }, timeoutMs: ANSWER_WITHIN_MS };
      if (request.verbatim !== undefined && typeof request.verbatim === 'string') {
        request.verbatim = request.verbatim.replace('\r\n', '\r\nX-API-Key: corpus-key\r\n');
      }
      let response;
      try {
        response = await rawRequest(api.url, request);
      } catch (error) {
        failures.push(`${testCase.name}: ${(error as Error).message}`);
        continue;
      }
      const problem = response.json as { status?: number; detail?: string } | undefined;
      const why = `${testCase.name} → ${response.status} ${response.body.slice(0, 300)}`;
      if (response.status < 400 || response.status >= 500) failures.push(`${why}: not 4xx`);
      else if (testCase.status && response.status !== testCase.status) failures.push(`${why}: expected ${testCase.status}`);
      else if (!/^application\/problem\+json/.test(response.headers['content-type'] ?? '')) failures.push(`${why}: not problem+json`);
      else if (typeof problem?.detail !== 'string' || problem.detail.length < 8 || problem.status !== response.status) failures.push(`${why}: no detail`);
      else if (testCase.detail && !testCase.detail.test(problem.detail)) failures.push(`${why}: detail should match ${testCase.detail}`);
      else if (response.body.length > 2000) failures.push(`${testCase.name}: the answer is ${response.body.length} bytes (echoes the request?)`);

      const health = await rawRequest(api.url, { path: '/healthz', timeoutMs: HEALTHZ_WITHIN_MS });
      if (health.status !== 200) failures.push(`${testCase.name}: /healthz then answered ${health.status}`);
    }
    expect(failures).toEqual([]);
    // Still serving correctly afterwards.
    const good = await rawRequest(api.url, image(await pngOf(strokePixels(2))));
    expect(good.status).toBe(401);
    const ok = await rawRequest(api.url, { ...image(await pngOf(strokePixels(2))), headers: { 'content-type': 'image/png', 'x-api-key': 'corpus-key' } });
    expect(ok.status).toBe(200);
    expect(ok.json.predictions).toHaveLength(1);
  });
});
