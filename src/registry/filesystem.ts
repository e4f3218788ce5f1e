// The registry on a filesystem shared by API processes and workers:
//
//   MODEL_DIR/versions/v0007-3fa9c1/{model.json, weights.bin, metadata.json}
//   MODEL_DIR/latest          one line: the version `latest` points at
//   MODEL_DIR/.claims/0007    sequence numbers taken (see claimNumber)
//
// A version is assembled in a temp directory next to its final place, fsynced,
// and renamed into place, so readers see either no version or a complete one.
import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, readdir, rename, rm, stat } from 'node:fs/promises';
import { join, normalize } from 'node:path';
import { writeFileAtomic } from '../lib/atomic-write.ts';
import { CorruptVersionError, InvalidModelError, ModelNotFoundError } from './errors.ts';
import {
  ARTIFACT_NAMES,
  MODEL_METADATA_SCHEMA,
  type ArtifactName,
  type ModelMetadata,
  type ModelRegistry,
  type ModelVersion,
  type PublishMetadata,
} from './types.ts';
import { LATEST_ALIAS, compareVersionsDescending, formatVersion, isVersion, versionNumber } from './version.ts';

const METADATA_JSON = 'metadata.json';
const LATEST_POINTER = 'latest';
const DTYPE_BYTES: Record<string, number> = { float32: 4, int32: 4, bool: 1, complex64: 8 };

export class FileSystemRegistry implements ModelRegistry {
  readonly versionsDir: string;
  private readonly claimsDir: string;
  private readonly latestFile: string;

  constructor(readonly root: string) {
    this.versionsDir = join(root, 'versions');
    this.claimsDir = join(root, '.claims');
    this.latestFile = join(root, LATEST_POINTER);
  }

  /** Where an artifact of a concrete version lives (filesystem-only; callers of the interface use readArtifact). */
  artifactPath(version: string, name: ArtifactName | 'metadata.json'): string {
    versionNumber(version); // throws InvalidVersionError: only safe ids reach join()
    return join(this.versionsDir, version, name);
  }

  async publish(sourceDir: string, metadata: PublishMetadata = {}): Promise<ModelVersion> {
    const modelJson = await readSourceFile(sourceDir, 'model.json');
    const weights = await readSourceFile(sourceDir, 'weights.bin');
    checkModelJson(join(sourceDir, 'model.json'), modelJson, weights.byteLength);
    const merged = { ...(await readSourceMetadata(sourceDir)), ...withoutUndefined(metadata) };
    // Checked before a number is claimed, so a bad publish leaves no trace.
    const checked = parseMetadata({ ...merged, version: '', created: new Date().toISOString() });
    if (typeof checked === 'string') throw new InvalidModelError(join(sourceDir, METADATA_JSON), checked);

    await mkdir(this.versionsDir, { recursive: true });
    const version = formatVersion(await this.claimNumber());
    const finalMetadata: ModelMetadata = { ...checked, version };

    const temp = join(this.versionsDir, `.tmp-${version}-${randomBytes(4).toString('hex')}`);
    try {
      await mkdir(temp);
      await writeDurable(join(temp, 'weights.bin'), weights);
      await writeDurable(join(temp, 'model.json'), modelJson);
      await writeDurable(join(temp, METADATA_JSON), `${JSON.stringify(finalMetadata, null, 2)}\n`);
      await fsyncDirectory(temp);
      await rename(temp, join(this.versionsDir, version));
      await fsyncDirectory(this.versionsDir);
    } catch (error) {
      await rm(temp, { recursive: true, force: true });
      throw error;
    }
    await this.writeLatest(version);
    return { ...finalMetadata, latest: true };
  }

  async list(): Promise<ModelVersion[]> {
    const latest = await this.latestVersion();
    const versions = (await this.versionIds()).sort(compareVersionsDescending);
    const entries = await Promise.all(
      versions.map((version) => this.readMetadata(version).then((m) => ({ ...m, latest: version === latest }))),
    );
    return entries;
  }

  async get(version: string): Promise<ModelVersion> {
    const resolved = await this.resolve(version);
    const metadata = await this.readMetadata(resolved);
    return { ...metadata, latest: resolved === (await this.latestVersion()) };
  }

  async latest(): Promise<ModelVersion | undefined> {
    const version = await this.latestVersion();
    return version === undefined ? undefined : { ...(await this.readMetadata(version)), latest: true };
  }

  async promote(version: string): Promise<ModelVersion> {
    const resolved = await this.resolve(version);
    const metadata = await this.readMetadata(resolved);
    await this.writeLatest(resolved);
    return { ...metadata, latest: true };
  }

  async readArtifact(version: string, name: ArtifactName): Promise<Buffer> {
    if (!(ARTIFACT_NAMES as readonly string[]).includes(name)) throw new Error(`unknown artifact ${name}`);
    const resolved = await this.resolve(version);
    try {
      return await readFile(this.artifactPath(resolved, name));
    } catch (error) {
      throw notFoundAs(error, new ModelNotFoundError(resolved));
    }
  }

  /** The version the pointer names; when the pointer is missing or names a vanished version, the newest one. */
  private async latestVersion(): Promise<string | undefined> {
    const pointed = (await readFile(this.latestFile, 'utf8').catch(ignoreMissing))?.trim();
    if (pointed && isVersion(pointed) && (await exists(join(this.versionsDir, pointed)))) return pointed;
    return (await this.versionIds()).sort(compareVersionsDescending)[0];
  }

  private async resolve(version: string): Promise<string> {
    if (version === LATEST_ALIAS) {
      const latest = await this.latestVersion();
      if (latest === undefined) throw new ModelNotFoundError(LATEST_ALIAS);
      return latest;
    }
    versionNumber(version);
    return version;
  }

  private async readMetadata(version: string): Promise<ModelMetadata> {
    const path = this.artifactPath(version, METADATA_JSON);
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (error) {
      throw notFoundAs(error, new ModelNotFoundError(version));
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (error) {
      throw new CorruptVersionError(path, `not valid JSON (${(error as Error).message})`);
    }
    const result = parseMetadata(json);
    if (typeof result === 'string') throw new CorruptVersionError(path, result);
    return result;
  }

  private async versionIds(): Promise<string[]> {
    const names = (await readdir(this.versionsDir).catch(ignoreMissing)) ?? [];
    return names.filter(isVersion);
  }

  /**
   * Takes the next free sequence number. Creating a claim file with O_EXCL is
   * atomic even on shared volumes, so two workers publishing at the same moment
   * never get the same number; a crash between claim and rename only leaves a gap.
   */
  private async claimNumber(): Promise<number> {
    await mkdir(this.claimsDir, { recursive: true });
    const claimed = (await readdir(this.claimsDir)).map(Number).filter(Number.isSafeInteger);
    const published = (await this.versionIds()).map(versionNumber);
    let number = Math.max(0, ...claimed, ...published) + 1;
    for (;;) {
      try {
        await (await open(join(this.claimsDir, String(number).padStart(4, '0')), 'wx')).close();
        return number;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
        number += 1;
      }
    }
  }

  private async writeLatest(version: string): Promise<void> {
    await writeFileAtomic(this.latestFile, `${version}\n`);
    await fsyncDirectory(this.root);
  }
}

function withoutUndefined(object: object): Record<string, unknown> {
  return Object.fromEntries(Object.entries(object).filter(([, value]) => value !== undefined));
}

async function readSourceFile(dir: string, name: string): Promise<Buffer> {
  try {
    return await readFile(join(dir, name));
  } catch (error) {
    throw new InvalidModelError(join(dir, name), `cannot read: ${(error as Error).message}`);
  }
}

async function readSourceMetadata(dir: string): Promise<Record<string, unknown>> {
  const path = join(dir, METADATA_JSON);
  const text = await readFile(path, 'utf8').catch(ignoreMissing);
  if (text === undefined) return {};
  try {
    const parsed: unknown = JSON.parse(text);
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) return parsed as Record<string, unknown>;
  } catch {
    // reported below
  }
  throw new InvalidModelError(path, 'expected a JSON object');
}

/** A model.json the browser loader can use: a topology and one weights group in weights.bin of the right size. */
function checkModelJson(path: string, bytes: Buffer, weightsBytes: number): void {
  let json: { modelTopology?: unknown; weightsManifest?: { paths?: unknown; weights?: unknown }[] };
  try {
    json = JSON.parse(bytes.toString('utf8'));
  } catch (error) {
    throw new InvalidModelError(path, `not valid JSON (${(error as Error).message})`);
  }
  if (!json || typeof json.modelTopology !== 'object' || !Array.isArray(json.weightsManifest)) {
    throw new InvalidModelError(path, 'expected a tfjs layers model with modelTopology and weightsManifest');
  }
  let expected = 0;
  for (const group of json.weightsManifest) {
    const paths = Array.isArray(group.paths) ? group.paths : [];
    if (paths.length !== 1 || typeof paths[0] !== 'string' || normalize(paths[0]) !== 'weights.bin') {
      throw new InvalidModelError(path, `weightsManifest paths must be ["weights.bin"], got ${JSON.stringify(group.paths)}`);
    }
    for (const spec of (group.weights ?? []) as { shape: number[]; dtype?: string; quantization?: unknown }[]) {
      if (spec.quantization) return; // quantized sizes differ; tfjs checks those on load
      const size = spec.shape.reduce((a, b) => a * b, 1);
      expected += size * (DTYPE_BYTES[spec.dtype ?? 'float32'] ?? NaN);
    }
  }
  if (expected !== weightsBytes) {
    throw new InvalidModelError(path, `weightsManifest describes ${expected} bytes but weights.bin has ${weightsBytes}`);
  }
}

/** Metadata checked against the schema, or what is wrong with it. */
function parseMetadata(value: unknown): ModelMetadata | string {
  const given = value as Partial<ModelMetadata>;
  // Training may record only per-epoch metrics and its recipe; derive the rest.
  const filled = {
    jobId: null,
    dataset: given.recipe?.dataset,
    testAccuracy: given.metrics?.at(-1)?.testAccuracy,
    engine: given.metrics?.at(-1)?.engine,
    ...given,
  };
  const parsed = MODEL_METADATA_SCHEMA.safeParse(filled);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`);
  return `invalid model metadata: ${problems.join('; ')}`;
}

/** Writes a new file and flushes it to disk, read-only: versions are immutable. */
async function writeDurable(path: string, data: string | Uint8Array): Promise<void> {
  const handle = await open(path, 'wx', 0o444);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Makes a rename inside `dir` durable (the directory entry itself is flushed). */
async function fsyncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

function ignoreMissing(error: NodeJS.ErrnoException): undefined {
  if (error.code === 'ENOENT') return undefined;
  throw error;
}

function notFoundAs(error: unknown, replacement: Error): Error {
  return (error as NodeJS.ErrnoException).code === 'ENOENT' ? replacement : (error as Error);
}
