// Model names group versions the way TF Serving and KServe do: every version
// belongs to one name, and each name has its own default version. A name is
// lower-case letters, digits, '.', '_' and '-' (it appears in URLs and in file
// names, and ':' is taken by `/v1/models/{name}:predict`); it may not look like a
// version id or be `latest`, so the legacy `/v1/models/{version}` routes stay unambiguous.
import { LATEST_ALIAS, isVersion } from './version.ts';
import { ServiceError } from '../lib/errors.ts';

export const MODEL_NAME_PATTERN = /^[a-z0-9][a-z0-9._-]{0,62}$/;
export const MODEL_NAME_EXAMPLE = 'mnist';
/** What a bare `/v1/predict` serves unless DEFAULT_MODEL says otherwise. */
export const DEFAULT_MODEL_NAME = 'mnist';

export function isModelName(value: string): boolean {
  return MODEL_NAME_PATTERN.test(value) && !isVersion(value) && value !== LATEST_ALIAS;
}

export const MODEL_NAME_RULE = `a model name: 1–63 of a-z 0-9 . _ - starting with a letter or digit, not a version id and not "${LATEST_ALIAS}"`;

export class InvalidModelNameError extends ServiceError {
  readonly statusCode = 400;
  readonly modelName: string;
  constructor(modelName: string) {
    super(`invalid model name ${JSON.stringify(modelName)}: expected ${MODEL_NAME_RULE}`);
    this.modelName = modelName;
  }
}

export function checkModelName(value: string): string {
  if (!isModelName(value)) throw new InvalidModelNameError(value);
  return value;
}

/** When to make a job's new version the default of its name. */
export const PROMOTION_POLICIES = ['if-better', 'always', 'never'] as const;
export type PromotionPolicy = (typeof PROMOTION_POLICIES)[number];
