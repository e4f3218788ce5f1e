import { ServiceError } from '../lib/errors.ts';
export { InvalidVersionError } from './version.ts';

export class ModelNotFoundError extends ServiceError {
  readonly statusCode = 404;
  constructor(readonly version: string) {
    super(version === 'latest' ? 'no model has been published yet' : `model version ${version} does not exist`);
  }
}

/** What publish was given (a training output directory or its metadata) cannot become a version. */
export class InvalidModelError extends ServiceError {
  readonly statusCode = 422;
  constructor(readonly path: string, problem: string) {
    super(`${path}: ${problem}`);
  }
}

/** A stored version whose metadata cannot be read: storage was damaged or edited by hand (a server fault, not bad input). */
export class CorruptVersionError extends Error {
  constructor(readonly path: string, problem: string) {
    super(`${path}: ${problem}`);
    this.name = 'CorruptVersionError';
  }
}

/** No version of this model name exists. */
export class UnknownModelError extends ServiceError {
  readonly statusCode = 404;
  constructor(readonly modelName: string) {
    super(`model ${JSON.stringify(modelName)} does not exist: no version has been published under that name`);
  }
}

/** Versions of the name exist, but none is its default (all published with promote "never", or refused). */
export class NoDefaultVersionError extends ServiceError {
  readonly statusCode = 404;
  constructor(readonly modelName: string) {
    super(`model ${JSON.stringify(modelName)} has versions but no default version; promote one with POST /v1/models/${modelName}/versions/{version}/promote`);
  }
}

/** The version exists but belongs to another model name. */
export class VersionNotInModelError extends ServiceError {
  readonly statusCode = 404;
  constructor(readonly modelName: string, readonly version: string, readonly actual: string) {
    super(`model version ${version} belongs to model ${JSON.stringify(actual)}, not ${JSON.stringify(modelName)}`);
  }
}

/** Deleting the version a name serves by default. */
export class VersionInUseError extends ServiceError {
  readonly statusCode = 409;
  constructor(readonly modelName: string, readonly version: string) {
    super(`model version ${version} is the default of model ${JSON.stringify(modelName)}; promote another version first`);
  }
}

/** An artifact whose bytes do not match the SHA-256 recorded at publish: storage damaged or edited. */
export class CorruptArtifactError extends ServiceError {
  // Storage damage, not a bug in the request or the code: the problem says exactly what failed its check.
  readonly statusCode = 500;
  override readonly problemSlug = 'corrupt-model-artifact';
  override readonly problemTitle = 'Corrupt model artifact';
  constructor(readonly version: string, readonly artifact: string, problem: string) {
    super(`model version ${version}: ${artifact} ${problem}`);
  }
}

/** A version that cannot be made a default: it fails verification (hashes, load, forward pass). */
export class PromotionRefusedError extends ServiceError {
  readonly statusCode = 422;
  constructor(readonly version: string, cause: unknown) {
    super(`model version ${version} cannot be promoted: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
}
