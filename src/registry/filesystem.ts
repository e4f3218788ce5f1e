// The registry on a filesystem shared by API processes and workers:
//
//   MODEL_DIR/versions/v0007-3fa9c1/{model.json, weights.bin, metadata.json}
//   MODEL_DIR/defaults/mnist  one line: the default version of model `mnist`
//   MODEL_DIR/latest          legacy pointer (before named models); read only, as
//                             the default of its version's name when defaults/ has none
//   MODEL_DIR/.claims/0007    sequence numbers taken (see claimNumber)
//   MODEL_DIR/.jobs/<sha256 of job id>   the version a job published (exactly-once publish)
//   MODEL_DIR/.deleted/v0007-3fa9c1      tombstones: a deleted version is never re-created
//
// A version is assembled in a temp directory next to its final place, fsynced,
// and renamed into place, so readers see either no version or a complete one.
// Every artifact's SHA-256 goes into metadata.json and is checked on every read.
import { randomBytes } from 'node:crypto';
import { link, mkdir, open, readFile, readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../lib/atomic-write.ts';
import {
  ARTIFACT_NAMES,
  METADATA_JSON,
  MODEL_JSON,
  ModelArtifactsError,
  WEIGHTS_BIN,
  digestOf,
  digestProblem,
  readMetadataJson,
  readModelDir,
  sha256,
  type ArtifactName,
} from '../model/artifacts.ts';
import {
  CorruptArtifactError,
  CorruptVersionError,
  InvalidModelError,
  ModelNotFoundError,
  NoDefaultVersionError,
  PromotionRefusedError,
  UnknownModelError,
  VersionInUseError,
  VersionNotInModelError,
} from './errors.ts';
import { DEFAULT_MODEL_NAME, checkModelName, isModelName } from './model-name.ts';
import {
  MODEL_METADATA_SCHEMA,
  type ModelMetadata,
  type ModelRegistry,
  type ModelSummary,
  type ModelVersion,
  type Promotion,
  type PublishMetadata,
  type PublishOptions,
  type PublishResult,
} from './types.ts';
import { LATEST_ALIAS, compareVersionsDescending, formatVersion, isVersion, versionNumber } from './version.ts';

const LEGACY_LATEST_POINTER = 'latest';
/** A name lock older than this was left by a crashed process. */
const STALE_LOCK_MS = 30_000;

export interface FileSystemRegistryOptions {
  /** The name the legacy `latest` alias stands for (DEFAULT_MODEL; default "mnist"). */
  defaultModel?: string;
}

export class FileSystemRegistry implements ModelRegistry {
  readonly root: string;
  readonly versionsDir: string;
  readonly defaultModel: string;
  private readonly claimsDir: string;
  private readonly jobsDir: string;
  private readonly deletedDir: string;
  private readonly defaultsDir: string;

  constructor(root: string, options: FileSystemRegistryOptions = {}) {
    this.root = root;
    this.versionsDir = join(root, 'versions');
    this.claimsDir = join(root, '.claims');
    this.jobsDir = join(root, '.jobs');
    this.deletedDir = join(root, '.deleted');
    this.defaultsDir = join(root, 'defaults');
    this.defaultModel = checkModelName(options.defaultModel ?? DEFAULT_MODEL_NAME);
  }

  /** Where an artifact of a concrete version lives (filesystem-only; callers of the interface use readArtifact). */
  artifactPath(version: string, name: ArtifactName | typeof METADATA_JSON): string {
    versionNumber(version); // throws InvalidVersionError: only safe ids reach join()
    return join(this.versionsDir, version, name);
  }

  /**
   * Publishes a training output as a new version of its model name, at most once
   * per job id: the job's version id is recorded (atomically, first writer wins)
   * before the version is assembled, so a retry, a second worker or a restart after
   * a crash finds and completes that same version instead of making another.
   */
  async publish(sourceDir: string, metadata: PublishMetadata = {}, options: PublishOptions = {}): Promise<PublishResult> {
    const { modelJsonBytes: modelJson, weights } = await readModelDir(sourceDir, { singleWeightsFile: true }).catch(asInvalidModel);
    const merged = { ...(await readMetadataJson(sourceDir).catch(asInvalidModel)), ...withoutUndefined(metadata) };
    const artifacts = { [MODEL_JSON]: digestOf(modelJson), [WEIGHTS_BIN]: digestOf(weights) };
    // Checked before a number is claimed, so a bad publish leaves no trace.
    const checked = parseMetadata({ ...merged, artifacts, version: '', created: new Date().toISOString() });
    if (typeof checked === 'string') throw new InvalidModelError(join(sourceDir, METADATA_JSON), checked);
    if (!isModelName(checked.model)) throw new InvalidModelError(join(sourceDir, METADATA_JSON), `model: ${JSON.stringify(checked.model)} is not a valid model name`);
    await mkdir(this.versionsDir, { recursive: true });

    const jobId = checked.jobId;
    let version = jobId === null ? undefined : await this.jobVersion(jobId);
    if (version === undefined) {
      version = formatVersion(await this.claimNumber());
      if (jobId !== null) version = await this.recordJobVersion(jobId, version);
    }
    if (await exists(join(this.deletedDir, version))) {
      throw new InvalidModelError(sourceDir, `job ${jobId} already published ${version}, which has since been deleted`);
    }
    let reused = true;
    if (!(await exists(join(this.versionsDir, version)))) {
      reused = !(await this.assemble(version, { ...checked, version }, modelJson, weights));
    }
    const published = await this.readMetadata(version);
    const promotion = await this.decidePromotion(published, options);
    return { ...published, latest: promotion.promoted || (await this.defaultId(published.model)) === version, reused, promotion };
  }

  /** Writes a version's directory; false when another process completed the same version first. */
  private async assemble(version: string, metadata: ModelMetadata, modelJson: Buffer, weights: Buffer): Promise<boolean> {
    const temp = join(this.versionsDir, `.tmp-${version}-${randomBytes(4).toString('hex')}`);
    try {
      await mkdir(temp);
      await writeDurable(join(temp, WEIGHTS_BIN), weights);
      await writeDurable(join(temp, MODEL_JSON), modelJson);
      await writeDurable(join(temp, METADATA_JSON), `${JSON.stringify(metadata, null, 2)}\n`);
      await fsyncDirectory(temp);
      await rename(temp, join(this.versionsDir, version));
      await fsyncDirectory(this.versionsDir);
      return true;
    } catch (error) {
      await rm(temp, { recursive: true, force: true });
      const code = (error as NodeJS.ErrnoException).code;
      if ((code === 'ENOTEMPTY' || code === 'EEXIST') && (await exists(join(this.versionsDir, version)))) return false;
      throw error;
    }
  }

  /** Applies the policy under the name's lock, so two publishes cannot both beat the same default. */
  private decidePromotion(version: ModelVersion | ModelMetadata, options: PublishOptions): Promise<Promotion> {
    const policy = options.promote ?? 'if-better';
    return this.withNameLock(version.model, async () => {
      const current = await this.defaultVersion(version.model);
      const previous = current?.version ?? null;
      const no = (reason: string): Promotion => ({ promoted: false, reason, previous });
      if (previous === version.version) return { promoted: true, reason: 'already the default version', previous };
      const accuracy = version.testAccuracy;
      if (policy === 'never') return no('not promoted: the job\'s promote policy is "never"');
      if (options.minAccuracy !== undefined && accuracy < options.minAccuracy) {
        return no(`not promoted: test accuracy ${accuracy} is below the job's minAccuracy ${options.minAccuracy}`);
      }
      if (policy === 'if-better' && current) {
        if (current.dataset !== version.dataset) {
          return no(`not promoted: the default ${current.version} was tested on ${current.dataset}, this version on ${version.dataset}; promote it by hand or use promote "always"`);
        }
        if (accuracy < current.testAccuracy) {
          return no(`not promoted: test accuracy ${accuracy} is below the default ${current.version}'s ${current.testAccuracy} (promote policy "if-better")`);
        }
      }
      try {
        await this.verifyArtifacts(version.version);
        await options.verify?.({ ...(version as ModelMetadata), latest: false });
      } catch (error) {
        return no(`not promoted: it failed verification: ${(error as Error).message}`);
      }
      await this.writeDefault(version.model, version.version);
      const why = current
        ? policy === 'always'
          ? `promoted (policy "always"), replacing ${current.version}`
          : `promoted: test accuracy ${accuracy} ≥ the previous default ${current.version}'s ${current.testAccuracy}`
        : `promoted: the first default of model ${JSON.stringify(version.model)}`;
      return { promoted: true, reason: why, previous };
    });
  }

  async list(model?: string): Promise<ModelVersion[]> {
    const versions = (await this.versionIds()).sort(compareVersionsDescending);
    const all = await Promise.all(versions.map((version) => this.readMetadata(version)));
    const selected = model === undefined ? all : all.filter((m) => m.model === model);
    const defaults = new Map<string, string | undefined>();
    for (const name of new Set(selected.map((m) => m.model))) defaults.set(name, await this.defaultId(name, all));
    return selected.map((m) => ({ ...m, latest: defaults.get(m.model) === m.version }));
  }

  async models(): Promise<ModelSummary[]> {
    const all = await Promise.all((await this.versionIds()).map((version) => this.readMetadata(version)));
    const names = [...new Set(all.map((m) => m.model))].sort();
    return Promise.all(
      names.map(async (name) => ({
        name,
        defaultVersion: (await this.defaultId(name, all)) ?? null,
        versions: all.filter((m) => m.model === name).length,
      })),
    );
  }

  async get(version: string): Promise<ModelVersion> {
    const resolved = await this.resolve(version);
    const metadata = await this.readMetadata(resolved);
    return { ...metadata, latest: resolved === (await this.defaultId(metadata.model)) };
  }

  async getVersion(model: string, version: string): Promise<ModelVersion> {
    checkModelName(model);
    versionNumber(version);
    let found: ModelVersion;
    try {
      found = await this.get(version);
    } catch (error) {
      if (error instanceof ModelNotFoundError && !(await this.hasModel(model))) throw new UnknownModelError(model);
      throw error;
    }
    if (found.model !== model) throw new VersionNotInModelError(model, version, found.model);
    return found;
  }

  async defaultVersion(model: string = this.defaultModel): Promise<ModelVersion | undefined> {
    const version = await this.defaultId(model);
    return version === undefined ? undefined : { ...(await this.readMetadata(version)), latest: true };
  }

  latest(): Promise<ModelVersion | undefined> {
    return this.defaultVersion(this.defaultModel);
  }

  async findByJob(jobId: string): Promise<ModelVersion | undefined> {
    const version = await this.jobVersion(jobId);
    if (version === undefined || !(await exists(join(this.versionsDir, version)))) return undefined;
    return this.get(version);
  }

  async promote(version: string, options: Pick<PublishOptions, 'verify'> = {}): Promise<ModelVersion> {
    const resolved = await this.resolve(version);
    const metadata = await this.readMetadata(resolved);
    return this.withNameLock(metadata.model, async () => {
      if ((await this.defaultId(metadata.model)) === resolved) return { ...metadata, latest: true }; // nothing changes
      try {
        await this.verifyArtifacts(resolved);
        await options.verify?.({ ...metadata, latest: false });
      } catch (error) {
        throw new PromotionRefusedError(resolved, error);
      }
      await this.writeDefault(metadata.model, resolved);
      return { ...metadata, latest: true };
    });
  }

  async delete(version: string): Promise<ModelVersion> {
    versionNumber(version);
    const metadata = await this.readMetadata(version);
    return this.withNameLock(metadata.model, async () => {
      if ((await this.defaultId(metadata.model)) === version) throw new VersionInUseError(metadata.model, version);
      // Tombstone first: a job retried later must not re-create what was deleted.
      await mkdir(this.deletedDir, { recursive: true });
      await (await open(join(this.deletedDir, version), 'w')).close();
      const trash = join(this.versionsDir, `.deleted-${version}-${randomBytes(4).toString('hex')}`);
      await rename(join(this.versionsDir, version), trash);
      await fsyncDirectory(this.versionsDir);
      await rm(trash, { recursive: true, force: true });
      return { ...metadata, latest: false };
    });
  }

  async readArtifact(version: string, name: ArtifactName): Promise<Buffer> {
    if (!(ARTIFACT_NAMES as readonly string[]).includes(name)) throw new Error(`unknown artifact ${name}`);
    const resolved = await this.resolve(version);
    const metadata = await this.readMetadata(resolved);
    let bytes: Buffer;
    try {
      bytes = await readFile(this.artifactPath(resolved, name));
    } catch (error) {
      throw notFoundAs(error, new CorruptArtifactError(resolved, name, 'is missing'));
    }
    checkDigest(metadata, name, bytes);
    return bytes;
  }

  /** Reads every artifact and checks it against its recorded SHA-256 (CorruptArtifactError). */
  private async verifyArtifacts(version: string): Promise<void> {
    for (const name of ARTIFACT_NAMES) await this.readArtifact(version, name);
  }

  private async hasModel(model: string): Promise<boolean> {
    return (await this.list(model)).length > 0;
  }

  /** The default version id of a name: defaults/<name>, else the legacy `latest` pointer if it names a version of that name. */
  private async defaultId(model: string, known?: ModelMetadata[]): Promise<string | undefined> {
    if (!isModelName(model)) return undefined;
    for (const file of [join(this.defaultsDir, model), join(this.root, LEGACY_LATEST_POINTER)]) {
      const pointed = (await readFile(file, 'utf8').catch(ignoreMissing))?.trim();
      if (!pointed || !isVersion(pointed)) continue;
      // An unreadable version counts as not this name's: the rule below decides what that means.
      const metadata = known?.find((m) => m.version === pointed) ?? (await this.readMetadata(pointed).catch(() => undefined));
      if (metadata?.model === model) return pointed;
      // defaults/<name> wins even when it names a vanished version: never fall back to an unvetted one.
      if (file !== join(this.root, LEGACY_LATEST_POINTER)) return undefined;
    }
    return undefined;
  }

  private async resolve(version: string): Promise<string> {
    if (version === LATEST_ALIAS) {
      const latest = await this.defaultId(this.defaultModel);
      if (latest !== undefined) return latest;
      if (await this.hasModel(this.defaultModel)) throw new NoDefaultVersionError(this.defaultModel);
      throw new ModelNotFoundError(LATEST_ALIAS);
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

  private jobFile(jobId: string): string {
    return join(this.jobsDir, sha256(jobId));
  }

  private async jobVersion(jobId: string): Promise<string | undefined> {
    const text = (await readFile(this.jobFile(jobId), 'utf8').catch(ignoreMissing))?.trim();
    return text && isVersion(text) ? text : undefined;
  }

  /**
   * Records `version` as the job's, unless the job already has one: link() fails
   * when the name exists, so of two concurrent publishers of one job only the first
   * record stands, and both go on with that version.
   */
  private async recordJobVersion(jobId: string, version: string): Promise<string> {
    await mkdir(this.jobsDir, { recursive: true });
    const temp = join(this.jobsDir, `.tmp-${randomBytes(6).toString('hex')}`);
    await writeDurable(temp, `${version}\n`);
    try {
      await link(temp, this.jobFile(jobId));
      await fsyncDirectory(this.jobsDir);
      return version;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const recorded = await this.jobVersion(jobId);
      if (recorded === undefined) throw error;
      return recorded;
    } finally {
      await rm(temp, { force: true });
    }
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

  private async writeDefault(model: string, version: string): Promise<void> {
    await mkdir(this.defaultsDir, { recursive: true });
    await writeFileAtomic(join(this.defaultsDir, model), `${version}\n`);
    await fsyncDirectory(this.defaultsDir);
  }

  /** Runs `fn` holding the name's lock file (O_EXCL), across processes sharing MODEL_DIR. */
  private async withNameLock<T>(model: string, fn: () => Promise<T>): Promise<T> {
    checkModelName(model);
    await mkdir(this.defaultsDir, { recursive: true });
    const lock = join(this.defaultsDir, `.${model}.lock`);
    for (let attempt = 0; ; attempt++) {
      try {
        await (await open(lock, 'wx')).close();
        break;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
        const age = await stat(lock).then((s) => Date.now() - s.mtimeMs, () => 0);
        if (age > STALE_LOCK_MS) await rm(lock, { force: true });
        else await new Promise((resolve) => setTimeout(resolve, Math.min(5 + attempt * 5, 50)));
      }
    }
    try {
      return await fn();
    } finally {
      await rm(lock, { force: true });
    }
  }
}

function checkDigest(metadata: ModelMetadata, name: ArtifactName, bytes: Buffer): void {
  const expected = metadata.artifacts?.[name];
  if (!expected) return; // published before hashes were recorded
  const problem = digestProblem(bytes, expected);
  if (problem !== undefined) throw new CorruptArtifactError(metadata.version, name, problem);
}

/** A training output's unreadable or malformed file is bad input to publish: 422. */
function asInvalidModel(error: unknown): never {
  if (error instanceof ModelArtifactsError) throw new InvalidModelError(error.path, error.problem);
  throw error;
}

function withoutUndefined(object: object): Record<string, unknown> {
  return Object.fromEntries(Object.entries(object).filter(([, value]) => value !== undefined));
}

/** Metadata checked against the schema, or what is wrong with it. */
function parseMetadata(value: unknown): ModelMetadata | string {
  const given = value as Partial<ModelMetadata>;
  // Training may record only per-epoch metrics and its recipe; derive the rest.
  const filled = {
    jobId: null,
    dataset: given.recipe?.dataset,
    // Versions published before named models belong to their data set's name.
    model: given.dataset ?? given.recipe?.dataset,
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
