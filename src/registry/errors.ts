import { ServiceError } from '../lib/errors.ts';
export { InvalidVersionError } from './version.ts';

export class ModelNotFoundError extends ServiceError {
  readonly statusCode = 404;
  readonly version: string;
  constructor(version: string) {
    super(version === 'latest' ? 'no model has been published yet' : `model version ${version} does not exist`);
    this.version = version;
  }
}

/** What publish was given (a training output directory or its metadata) cannot become a version. */
export class InvalidModelError extends ServiceError {
  readonly statusCode = 422;
  readonly path: string;
  constructor(path: string, problem: string) {
    super(`${path}: ${problem}`);
    this.path = path;
  }
}

/** A stored version whose metadata cannot be read: storage was damaged or edited by hand (a server fault, not bad input). */
export class CorruptVersionError extends Error {
  readonly path: string;
  constructor(path: string, problem: string) {
    super(`${path}: ${problem}`);
    this.path = path;
    this.name = 'CorruptVersionError';
  }
}

/** No version of this model name exists. */
export class UnknownModelError extends ServiceError {
  readonly statusCode = 404;
  readonly modelName: string;
  constructor(modelName: string) {
    super(`model ${JSON.stringify(modelName)} does not exist: no version has been published under that name`);
    this.modelName = modelName;
  }
}

/** Versions of the name exist, but none is its default (all published with promote "never", or refused). */
export class NoDefaultVersionError extends ServiceError {
  readonly statusCode = 404;
  readonly modelName: string;
  constructor(modelName: string) {
    super(`model ${JSON.stringify(modelName)} has versions but no default version; promote one with POST /v1/models/${modelName}/versions/{version}/promote`);
    this.modelName = modelName;
  }
}

/** The version exists but belongs to another model name. */
export class VersionNotInModelError extends ServiceError {
  readonly statusCode = 404;
  readonly modelName: string;
  readonly version: string;
  readonly actual: string;
  constructor(modelName: string, version: string, actual: string) {
    super(`model version ${version} belongs to model ${JSON.stringify(actual)}, not ${JSON.stringify(modelName)}`);
    this.modelName = modelName;
    this.version = version;
    this.actual = actual;
  }
}

/** Deleting the version a name serves by default. */
export class VersionInUseError extends ServiceError {
  readonly statusCode = 409;
  readonly modelName: string;
  readonly version: string;
  constructor(modelName: string, version: string) {
    super(`model version ${version} is the default of model ${JSON.stringify(modelName)}; promote another version first`);
    this.modelName = modelName;
    this.version = version;
  }
}

/** An artifact whose bytes do not match the SHA-256 recorded at publish: storage damaged or edited. */
export class CorruptArtifactError extends ServiceError {
  // Storage damage, not a bug in the request or the code: the problem says exactly what failed its check.
  readonly statusCode = 500;
  override readonly problemSlug = 'corrupt-model-artifact';
  override readonly problemTitle = 'Corrupt model artifact';
  readonly version: string;
  readonly artifact: string;
  constructor(version: string, artifact: string, problem: string) {
    super(`model version ${version}: ${artifact} ${problem}`);
    this.version = version;
    this.artifact = artifact;
  }
}

/** A version that cannot be made a default: it fails verification (hashes, load, forward pass). */
export class PromotionRefusedError extends ServiceError {
  readonly statusCode = 422;
  readonly version: string;
  constructor(version: string, cause: unknown) {
    super(`model version ${version} cannot be promoted: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.version = version;
  }
}
