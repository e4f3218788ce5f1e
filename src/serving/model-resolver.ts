// Models by name, for the protocols that address them so (Open Inference
// Protocol /v2/models/{name}, ONNX export by name). This is the one place that
// knows how a name maps to a stored, loaded model; the protocol routes see only
// the ModelResolver interface.
//
// Today the service serves one model line, the registry's `latest`, and its
// name is the data set it was trained on ("mnist" or "fashion-mnist"). A pinned
// version resolves under its own data set's name.
import type { ModelRegistry } from '../registry/types.ts';
import { LATEST_ALIAS } from '../registry/version.ts';
import type { LoadedModel } from './loaded-model.ts';
import type { ModelManager } from './model-manager.ts';

/** A loaded model held for one request under the name it was asked by; call release() when done. */
export interface ResolvedModel {
  name: string;
  model: LoadedModel;
  release(): void;
}

export interface ModelResolver {
  /**
   * The loaded model `name` (at `version`, else the version the server picks).
   * Throws UnknownModelNameError (404), NoModelError (503: nothing loaded yet),
   * InvalidVersionError (400) or ModelNotFoundError (404: no such version).
   */
  resolveModel(name: string, version?: string): Promise<ResolvedModel>;
  /** Versions of `name` that may be asked for explicitly, newest first. */
  versions(name: string): Promise<string[]>;
  /** Whether every model the server serves is loaded and ready (server readiness). */
  ready(): boolean;
  /** The name a loaded model is served under (metrics label requests by it). */
  nameOf(model: LoadedModel): string;
  /** Every model loaded now, with its name (metrics). */
  loaded(): { name: string; model: LoadedModel }[];
}

/** A model name this server does not serve. */
export class UnknownModelNameError extends Error {
  readonly statusCode = 404;
  constructor(name: string, served: string[]) {
    super(`no model named ${JSON.stringify(name)}; this server serves ${served.length ? served.map((n) => JSON.stringify(n)).join(', ') : 'no model yet'}`);
    this.name = 'UnknownModelNameError';
  }
}

/** The ModelResolver over today's ModelManager: name = the served model's data set. */
export function modelManagerResolver(models: ModelManager, registry: ModelRegistry): ModelResolver {
  const served = () => (models.active ? [models.active.dataset] : []);
  return {
    async resolveModel(name, version = LATEST_ALIAS) {
      const lease = await models.acquire(version);
      if (lease.model.info.dataset !== name) {
        lease.release();
        throw new UnknownModelNameError(name, version === LATEST_ALIAS ? served() : [lease.model.info.dataset]);
      }
      return { name, model: lease.model, release: () => lease.release() };
    },
    async versions(name) {
      return (await registry.list()).filter((v) => v.dataset === name).map((v) => v.version);
    },
    ready: () => models.active !== undefined,
    nameOf: (model) => model.info.dataset,
    loaded: () => models.loadedModels().map((model) => ({ name: model.info.dataset, model })),
  };
}
