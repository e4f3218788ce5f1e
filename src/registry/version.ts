// Version ids are `v` + a sequence number + a random suffix: `v0007-3fa9c1`.
// The number makes them sort in publish order and easy to read; the suffix keeps
// an id from ever naming two different models (e.g. after MODEL_DIR is wiped),
// so clients can cache artifacts by version forever. The strict pattern is also
// what stops path traversal: nothing but [v0-9a-f-] ever reaches a path.
import { randomBytes } from 'node:crypto';
import { ServiceError } from '../lib/errors.ts';

export const VERSION_PATTERN = /^v(\d{4,9})-([0-9a-f]{6})$/;
export const VERSION_EXAMPLE = 'v0001-3fa9c1';
/** Accepted wherever a version is, meaning the version the `latest` pointer names. */
export const LATEST_ALIAS = 'latest';

/** A version id that is not of the form the registry issues. */
export class InvalidVersionError extends ServiceError {
  readonly statusCode = 400;
  override readonly problemTitle = 'Invalid model version';
  readonly version: string;
  constructor(version: string) {
    super(`invalid model version ${JSON.stringify(version)}: expected an id like ${VERSION_EXAMPLE} or "${LATEST_ALIAS}"`);
    this.version = version;
  }
}

export function isVersion(value: string): boolean {
  return VERSION_PATTERN.test(value);
}

/** The sequence number of a version id; throws InvalidVersionError for anything else. */
export function versionNumber(version: string): number {
  const match = VERSION_PATTERN.exec(version);
  if (!match) throw new InvalidVersionError(version);
  return Number(match[1]);
}

export function formatVersion(number: number): string {
  return `v${String(number).padStart(4, '0')}-${randomBytes(3).toString('hex')}`;
}

/** Newest first. */
export function compareVersionsDescending(a: string, b: string): number {
  return versionNumber(b) - versionNumber(a) || (a < b ? 1 : a > b ? -1 : 0);
}
