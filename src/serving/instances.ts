// What a /v1/predict request asks to classify, whatever form it came in: each
// instance ends up as 784 pixel values 0–255 (28×28, MNIST form), ready for a
// model's own normalisation. JSON is checked by hand rather than with a schema:
// it is the hot path, and every message names the exact field that is wrong.
import { ForbiddenJsonKeyError, parseClientJson } from '../lib/safe-json.ts';
import { chargePixels, type DecodeSlots } from './decode-budget.ts';
import { decodeImage, fastPathPixels, imageFormat, readImageHeader, readPngHeader, type GrayImage, type ImageHeader } from './decode.ts';
import { InvalidPredictRequestError, TooManyInstancesError, UnprocessableInputError } from './errors.ts';
import { PREPROCESS_MAX_SIDE, toMnistForm } from './mnist-form.ts';
import { INPUT_NAME } from './signature.ts';
import { IMAGE_PIXELS, IMAGE_SIDE } from '../model/spec.ts';


/** One image to classify: encoded bytes (PNG/JPEG) or pixels. `what` names it in error messages. */
export type Instance = { what: string; bytes: Uint8Array } | { what: string; image: GrayImage };

export interface InstanceOptions {
  /** `?preprocess=mnist`: crop, resize and centre any image instead of requiring 28×28. */
  preprocess: boolean;
  /** Largest width × height of an encoded image. */
  maxPixels: number;
}

/** Deepest nesting a valid body has is 6 (`{"inputs":{"image":[[[[…]]]]}}`, 28×28×1 rows); anything much deeper is hostile. */
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

/** How JSON pixel values are scaled: 0–255 (`pixel`, what the model's signature states) or 0–1 (`unit`, the Keras habit). */
export type PixelScale = 'pixel' | 'unit';
export const PIXEL_SCALES: readonly PixelScale[] = ['pixel', 'unit'];

/** One pixel value; `where` (built only for the message) names it. */
export function pixelValue(v: unknown, where: () => string, max: number): number {
  if (typeof v !== 'number') throw new InvalidPredictRequestError(`${where()} must be a number 0–${max}, got ${describe(v)}`);
  // JSON has no NaN, but 1e999 parses to Infinity.
  if (!Number.isFinite(v) || v < 0 || v > max) {
    throw new UnprocessableInputError(`${where()} is ${v}; pixel values must be 0–${max}${max === 1 ? ' with "scale": "unit"' : ''}`);
  }
  return v;
}

/** A row entry: a number, or a one-element array (the [28, 28, 1] shape Keras models take). */
function unwrapChannel(v: unknown): unknown {
  return Array.isArray(v) && v.length === 1 ? v[0] : v;
}

/**
 * Brings one image's values (already checked to lie within 0–1 for `unit`, 0–255
 * otherwise) to 0–255, in place. Without a stated scale, values that all lie
 * within 0–1 (and are not all 0) are refused: they are almost surely 0–1 floats,
 * which the model would read as a nearly black image and classify confidently wrong.
 * `fix` says how this request form states its scale.
 */
export function applyScale(pixels: Float32Array, what: string, scale: PixelScale | undefined, fix = '"scale": "unit" beside them'): void {
  if (scale === 'unit') {
    for (let i = 0; i < pixels.length; i++) pixels[i] = pixels[i]! * 255;
  } else if (scale === undefined) {
    let peak = 0;
    for (let i = 0; i < pixels.length; i++) peak = Math.max(peak, pixels[i]!);
    if (peak > 0 && peak <= 1) {
      throw new UnprocessableInputError(
        `${what} looks like 0–1 floats (every value is within 0–1), but pixel values are 0–255 (white digit on black); ` +
          `multiply them by 255, or send ${fix} (or "pixel" if they really are 0–255)`,
      );
    }
  }
}

/**
 * 784 numbers, flat, as 28 rows of 28, or 28 rows of 28 one-element arrays (28×28×1),
 * in the request's scale (see applyScale).
 */
function readPixels(value: unknown, what: string, scale: PixelScale | undefined): GrayImage {
  if (!Array.isArray(value)) throw new InvalidPredictRequestError(`${what} must be an array of ${IMAGE_PIXELS} numbers or ${IMAGE_SIDE} rows of ${IMAGE_SIDE}, got ${describe(value)}`);
  const max = scale === 'unit' ? 1 : 255;
  const pixels = new Float32Array(IMAGE_PIXELS);
  if (value.length === IMAGE_PIXELS) {
    for (let i = 0; i < IMAGE_PIXELS; i++) pixels[i] = pixelValue(value[i], () => `${what}[${i}]`, max);
  } else if (value.length === IMAGE_SIDE && value.every(Array.isArray)) {
    value.forEach((row: unknown[], y) => {
      if (row.length !== IMAGE_SIDE) throw new UnprocessableInputError(`${what}[${y}] has ${row.length} values; each row must have ${IMAGE_SIDE}`);
      for (let x = 0; x < IMAGE_SIDE; x++) pixels[y * IMAGE_SIDE + x] = pixelValue(unwrapChannel(row[x]), () => `${what}[${y}][${x}]`, max);
    });
  } else {
    throw new UnprocessableInputError(`${what} has ${value.length} entries; expected ${IMAGE_PIXELS} numbers or ${IMAGE_SIDE} rows of ${IMAGE_SIDE}`);
  }
  applyScale(pixels, what, scale);
  return { width: IMAGE_SIDE, height: IMAGE_SIDE, pixels };
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

function readInstance(value: unknown, what: string, scale: PixelScale | undefined): Instance {
  // TF Serving's row format: an instance is the image tensor itself.
  if (Array.isArray(value)) return { what, image: readPixels(value, what, scale) };
  if (!isObject(value)) throw new InvalidPredictRequestError(`${what} must be an object with "pixels" or "image", or an array of pixels, got ${describe(value)}`);
  const keys = Object.keys(value);
  const unknown = keys.filter((key) => key !== 'pixels' && key !== 'image');
  if (unknown.length > 0 || keys.length !== 1) {
    throw new InvalidPredictRequestError(
      `${what} must have exactly one of "pixels" or "image"${unknown.length ? `; unknown field ${JSON.stringify(unknown[0])}` : ''}`,
    );
  }
  if ('pixels' in value) return { what: `${what}.pixels`, image: readPixels(value.pixels, `${what}.pixels`, scale) };
  // TF Serving names the input: {"image": [[…]]} is pixels, {"image": "<base64>"} an encoded file.
  if (Array.isArray(value.image)) return { what: `${what}.image`, image: readPixels(value.image, `${what}.image`, scale) };
  return { what: `${what}.image`, bytes: readBase64(value.image, `${what}.image`) };
}

function readScale(value: unknown): PixelScale {
  if (typeof value !== 'string' || !(PIXEL_SCALES as readonly string[]).includes(value)) {
    throw new InvalidPredictRequestError(`"scale" must be "pixel" (values 0–255) or "unit" (values 0–1), got ${JSON.stringify(value)}`);
  }
  return value as PixelScale;
}

function readBatch(instances: unknown, field: string, maxInstances: number, scale: PixelScale | undefined): Instance[] {
  if (!Array.isArray(instances)) throw new InvalidPredictRequestError(`"${field}" must be an array, got ${describe(instances)}`);
  if (instances.length === 0) throw new UnprocessableInputError(`"${field}" is empty; send at least one`);
  if (instances.length > maxInstances) throw new TooManyInstancesError(instances.length, maxInstances);
  return instances.map((instance, i) => readInstance(instance, `${field}[${i}]`, scale));
}

/**
 * `{"pixels"}`, `{"image"}`, `{"instances": [those, or pixel arrays…]}` (TF Serving's
 * row format) or `{"inputs": [pixel arrays…] | {"image": [pixel arrays…]}}` (its
 * columnar format) → instances. `"scale"` may sit beside any of them.
 */
export function instancesFromJson(body: unknown, maxInstances: number): Instance[] {
  if (!isObject(body)) throw new InvalidPredictRequestError(`body must be an object with "pixels", "image", "instances" or "inputs", got ${describe(body)}`);
  const { scale: scaleField, ...rest } = body;
  const scale = 'scale' in body ? readScale(scaleField) : undefined;
  for (const field of ['instances', 'inputs'] as const) {
    if (!(field in rest)) continue;
    const { [field]: batch, ...others } = rest;
    const extra = Object.keys(others)[0];
    if (extra !== undefined) throw new InvalidPredictRequestError(`unknown field ${JSON.stringify(extra)} next to "${field}"`);
    if (field === 'inputs' && isObject(batch)) {
      const names = Object.keys(batch);
      if (names.length !== 1 || names[0] !== INPUT_NAME) {
        throw new InvalidPredictRequestError(`"inputs" names the model's inputs; this model has one, "${INPUT_NAME}" (got ${JSON.stringify(names)})`);
      }
      return readBatch(batch[INPUT_NAME], `inputs.${INPUT_NAME}`, maxInstances, scale);
    }
    return readBatch(batch, field, maxInstances, scale);
  }
  return [readInstance(rest, 'body', scale)];
}

/** An instance's 784 MNIST-form pixel values (0–255). `header`: already read by instancesPixels. */
export async function instancePixels(instance: Instance, options: InstanceOptions, header?: ImageHeader): Promise<Uint8Array | Float32Array> {
  if ('image' in instance) return options.preprocess ? toMnistForm(instance.image, instance.what) : instance.image.pixels;
  const image = options.preprocess
    ? await decodeImage(instance.bytes, instance.what, { maxPixels: options.maxPixels, background: 255, maxSide: PREPROCESS_MAX_SIDE }, header)
    : await decodeImage(instance.bytes, instance.what, { maxPixels: options.maxPixels, background: 0, expectSide: IMAGE_SIDE }, header);
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
  // Requests of PNGs (the common case) read their headers and fast-path pixels without a promise
  // per image: at thousands of images a second those promises were a good part of the garbage.
  const allPng = instances.every((instance) => 'bytes' in instance && imageFormat(instance.bytes) === 'png');
  const headers = allPng
    ? instances.map((instance) => readPngHeader((instance as { bytes: Uint8Array }).bytes, instance.what))
    : await Promise.all(instances.map((instance) => ('bytes' in instance ? readImageHeader(instance.bytes, instance.what) : undefined)));
  const declared = headers.flatMap((header, i) => (header ? [{ what: instances[i]!.what, width: header.width, height: header.height }] : []));
  chargePixels(declared, options.maxPixels, options.maxRequestPixels);
  return Promise.all(
    instances.map((instance, i) => {
      const header = headers[i];
      // decodeImage's fast path, called here without its promise; what it does not take goes on to sharp.
      const pixels = header && 'bytes' in instance ? fastPathPixels(instance.bytes, header, options.preprocess ? undefined : IMAGE_SIDE) : undefined;
      if (pixels) return pixels;
      const cheap = !header || (!options.preprocess && header.format === 'png' && header.width === IMAGE_SIDE && header.height === IMAGE_SIDE);
      return cheap ? instancePixels(instance, options, header) : options.slots.run(() => instancePixels(instance, options, header));
    }),
  );
}
