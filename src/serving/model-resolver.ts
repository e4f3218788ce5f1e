// Models by name, for the protocols that address them so (Open Inference
// Protocol /v2/models/{name}, TF Serving's /v1/models/{name}:predict). The
// protocol routes see only this interface; ModelManager.resolve is the one
// lookup behind it (names, per-name defaults, pinned versions, last good model).
import type { ModelRegistry } from '../registry/types.ts';
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
   * The loaded model `name` (at `version`, else the name's default version).
   * Throws what ModelManager.resolve throws: UnknownModelError (404), NoModelError
   * (503, saying why), InvalidVersionError (400), ModelNotFoundError / VersionNotInModelError (404).
   */
  resolveModel(name: string, version?: string): Promise<ResolvedModel>;
  /** Versions of `name` that may be asked for explicitly, newest first. */
  versions(name: string): Promise<string[]>;
  /** Whether every model name with a default has a loadable model (server readiness, as /readyz). */
  ready(): boolean;
  /** The name a loaded model is served under (metrics label requests by it). */
  nameOf(model: LoadedModel): string;
  /** Every model loaded now, with its name (metrics). */
  loaded(): { name: string; model: LoadedModel }[];
}

export function modelManagerResolver(models: ModelManager, registry: ModelRegistry): ModelResolver {
  return {
    async resolveModel(name, version) {
      const lease = await models.resolve(name, version);
      return { name, model: lease.model, release: () => lease.release() };
    },
    async versions(name) {
      return (await registry.list(name)).map((v) => v.version);
    },
    ready: () => models.active !== undefined && models.status().every((s) => s.servedVersion !== null || s.problem === null),
    nameOf: (model) => model.info.model,
    loaded: () => models.loadedModels().map((model) => ({ name: model.info.model, model })),
  };
}
