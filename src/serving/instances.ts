// What a /v1/predict request asks to classify, whatever form it came in: each
// instance ends up as 784 pixel values 0–255 (28×28, MNIST form), ready for a
// model's own normalisation. JSON is checked by hand rather than with a schema:
// it is the hot path, and every message names the exact field that is wrong.
import { ForbiddenJsonKeyError, parseClientJson } from '../lib/safe-json.ts';
import { chargePixels, type DecodeSlots } from './decode-budget.ts';
import { decodeImage, MNIST_SIDE, readImageHeader, type GrayImage, type ImageHeader } from './decode.ts';
import { InvalidPredictRequestError, TooManyInstancesError, UnprocessableInputError } from './errors.ts';
import { PREPROCESS_MAX_SIDE, toMnistForm } from './mnist-form.ts';

export const PIXELS = MNIST_SIDE * MNIST_SIDE;

/** One image to classify: encoded bytes (PNG/JPEG) or pixels. `what` names it in error messages. */
export type Instance = { what: string; bytes: Uint8Array } | { what: string; image: GrayImage };

export interface InstanceOptions {
  /** `?preprocess=mnist`: crop, resize and centre any image instead of requiring 28×28. */
  preprocess: boolean;
  /** Largest width × height of an encoded image. */
  maxPixels: number;
}

/** Deepest nesting a valid body has is 5 (`{"instances":[{"pixels":[[…]]}]}`); anything much deeper is hostile. */
export const MAX_JSON_DEPTH = 8;

/**
 * Parses a JSON body after checking its nesting depth in one pass over the bytes,
 * so a body like `[[[[…` 100,000 deep is refused before anything recursive sees it.
 */
export function parseJsonBody(body: Buffer): unknown {
  let depth = 0;
  let inString = false;
  let escaped = false;
  for (let i = 0; i < body.length; i++) {
    const byte = body[i]!;
    if (inString) {
      if (escaped) escaped = false;
      else if (byte === 0x5c) escaped = true; // backslash
      else if (byte === 0x22) inString = false; // "
    } else if (byte === 0x22) {
      inString = true;
    } else if (byte === 0x5b || byte === 0x7b) {
      if (++depth > MAX_JSON_DEPTH) {
        throw new InvalidPredictRequestError(`JSON body is nested more than ${MAX_JSON_DEPTH} levels deep`);
      }
    } else if (byte === 0x5d || byte === 0x7d) {
      depth--;
    }
  }
  try {
    return parseClientJson(body.toString('utf8'));
  } catch (error) {
    if (error instanceof ForbiddenJsonKeyError) throw new InvalidPredictRequestError(error.message);
    throw new InvalidPredictRequestError(`body is not valid JSON: ${(error as Error).message}`);
  }
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

const describe = (value: unknown) =>
  value === null ? 'null' : Array.isArray(value) ? `an array of ${value.length}` : typeof value === 'string' ? 'a string' : typeof value;

/** One pixel value; `where` (built only for the message) names it. */
function pixelValue(v: unknown, where: () => string): number {
  if (typeof v !== 'number') throw new InvalidPredictRequestError(`${where()} must be a number 0–255, got ${describe(v)}`);
  // JSON has no NaN, but 1e999 parses to Infinity.
  if (!Number.isFinite(v) || v < 0 || v > 255) throw new UnprocessableInputError(`${where()} is ${v}; pixel values must be 0–255`);
  return v;
}

/** 784 numbers 0–255, flat or as 28 rows of 28. */
function readPixels(value: unknown, what: string): GrayImage {
  if (!Array.isArray(value)) throw new InvalidPredictRequestError(`${what} must be an array of ${PIXELS} numbers or ${MNIST_SIDE} rows of ${MNIST_SIDE}, got ${describe(value)}`);
  const pixels = new Float32Array(PIXELS);
  if (value.length === PIXELS) {
    for (let i = 0; i < PIXELS; i++) pixels[i] = pixelValue(value[i], () => `${what}[${i}]`);
  } else if (value.length === MNIST_SIDE && value.every(Array.isArray)) {
    value.forEach((row: unknown[], y) => {
      if (row.length !== MNIST_SIDE) throw new UnprocessableInputError(`${what}[${y}] has ${row.length} values; each row must have ${MNIST_SIDE}`);
      for (let x = 0; x < MNIST_SIDE; x++) pixels[y * MNIST_SIDE + x] = pixelValue(row[x], () => `${what}[${y}][${x}]`);
    });
  } else {
    throw new UnprocessableInputError(`${what} has ${value.length} entries; expected ${PIXELS} numbers or ${MNIST_SIDE} rows of ${MNIST_SIDE}`);
  }
  return { width: MNIST_SIDE, height: MNIST_SIDE, pixels };
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const DATA_URL_PREFIX = /^data:image\/(?:png|jpeg);base64,/;

/** Base64 (or a data: URL, as a browser canvas gives) of a PNG or JPEG. */
function readBase64(value: unknown, what: string): Uint8Array {
  if (typeof value !== 'string') throw new InvalidPredictRequestError(`${what} must be a base64 string of a PNG or JPEG, got ${describe(value)}`);
  const text = value.replace(DATA_URL_PREFIX, '');
  if (text.length % 4 === 1 || !BASE64.test(text)) throw new InvalidPredictRequestError(`${what} is not valid base64`);
  return Buffer.from(text, 'base64');
}

function readInstance(value: unknown, what: string): Instance {
  if (!isObject(value)) throw new InvalidPredictRequestError(`${what} must be an object with "pixels" or "image", got ${describe(value)}`);
  const keys = Object.keys(value);
  const unknown = keys.filter((key) => key !== 'pixels' && key !== 'image');
  if (unknown.length > 0 || keys.length !== 1) {
    throw new InvalidPredictRequestError(
      `${what} must have exactly one of "pixels" or "image"${unknown.length ? `; unknown field ${JSON.stringify(unknown[0])}` : ''}`,
    );
  }
  return 'pixels' in value
    ? { what: `${what}.pixels`, image: readPixels(value.pixels, `${what}.pixels`) }
    : { what: `${what}.image`, bytes: readBase64(value.image, `${what}.image`) };
}

/** `{"pixels"}`, `{"image"}` or `{"instances": [those…]}` → instances. */
export function instancesFromJson(body: unknown, maxInstances: number): Instance[] {
  if (isObject(body) && 'instances' in body) {
    const { instances, ...rest } = body;
    const extra = Object.keys(rest)[0];
    if (extra !== undefined) throw new InvalidPredictRequestError(`unknown field ${JSON.stringify(extra)} next to "instances"`);
    if (!Array.isArray(instances)) throw new InvalidPredictRequestError(`"instances" must be an array, got ${describe(instances)}`);
    if (instances.length === 0) throw new UnprocessableInputError('"instances" is empty; send at least one');
    if (instances.length > maxInstances) throw new TooManyInstancesError(instances.length, maxInstances);
    return instances.map((instance, i) => readInstance(instance, `instances[${i}]`));
  }
  return [readInstance(body, 'body')];
}

/** An instance's 784 MNIST-form pixel values (0–255). `header`: already read by instancesPixels. */
export async function instancePixels(instance: Instance, options: InstanceOptions, header?: ImageHeader): Promise<Uint8Array | Float32Array> {
  if ('image' in instance) return options.preprocess ? toMnistForm(instance.image, instance.what) : instance.image.pixels;
  const image = options.preprocess
    ? await decodeImage(instance.bytes, instance.what, { maxPixels: options.maxPixels, background: 255, maxSide: PREPROCESS_MAX_SIDE }, header)
    : await decodeImage(instance.bytes, instance.what, { maxPixels: options.maxPixels, background: 0, expectSide: MNIST_SIDE }, header);
  return options.preprocess ? toMnistForm(image, instance.what) : image.pixels;
}

export interface RequestBudget {
  /** Most pixels all encoded images of one request may declare together (PREDICT_MAX_REQUEST_PIXELS). */
  maxRequestPixels: number;
  /** Process-wide bound on concurrent decodes (PREDICT_DECODE_CONCURRENCY). */
  slots: DecodeSlots;
}

/**
 * All instances of one request → pixels, within the request's budget: every header
 * is read first (no pixels decoded), the declared sizes are charged against
 * maxRequestPixels, and only then is anything decoded, each image in a decode slot.
 * 28×28 grayscale PNGs (the fast path, microseconds each) and JSON pixels skip the slots.
 */
export async function instancesPixels(instances: Instance[], options: InstanceOptions & RequestBudget): Promise<(Uint8Array | Float32Array)[]> {
  const headers = await Promise.all(
    instances.map((instance) => ('bytes' in instance ? readImageHeader(instance.bytes, instance.what) : undefined)),
  );
  const declared = headers.flatMap((header, i) => (header ? [{ what: instances[i]!.what, width: header.width, height: header.height }] : []));
  chargePixels(declared, options.maxPixels, options.maxRequestPixels);
  return Promise.all(
    instances.map((instance, i) => {
      const header = headers[i];
      const cheap = !header || (!options.preprocess && header.format === 'png' && header.width === MNIST_SIDE && header.height === MNIST_SIDE);
      return cheap ? instancePixels(instance, options, header) : options.slots.run(() => instancePixels(instance, options, header));
    }),
  );
}
