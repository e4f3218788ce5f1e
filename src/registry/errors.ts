export { InvalidVersionError } from './version.ts';

export class ModelNotFoundError extends Error {
  constructor(readonly version: string) {
    super(version === 'latest' ? 'no model has been published yet' : `model version ${version} does not exist`);
    this.name = 'ModelNotFoundError';
  }
}

/** What publish was given (a training output directory or its metadata) cannot become a version. */
export class InvalidModelError extends Error {
  constructor(readonly path: string, problem: string) {
    super(`${path}: ${problem}`);
    this.name = 'InvalidModelError';
  }
}

/** A stored version whose metadata cannot be read: storage was damaged or edited by hand (a server fault, not bad input). */
export class CorruptVersionError extends Error {
  constructor(readonly path: string, problem: string) {
    super(`${path}: ${problem}`);
    this.name = 'CorruptVersionError';
  }
}
