// Which models the API serves. Every model name's default version is loaded at
// start-up and hot-swapped when a version is published, promoted or deleted: the
// registry's Redis announcement triggers a re-check at once, and a periodic
// re-check catches any announcement missed while Redis was away. A new default is
// loaded (artifacts checked against their SHA-256) and run once before the swap;
// if it cannot be loaded, the name keeps serving its last good model and the
// reason is kept for /readyz and for the 503 detail. The old model is disposed
// when its last request ends. Versions asked for explicitly are kept in a small LRU.
import type { Logger } from '../lib/logger.ts';
import type { RedisSettings } from '../lib/redis.ts';
import { subscribeToModels, type ModelSubscription } from '../registry/announcements.ts';
import { DEFAULT_MODEL_NAME, checkModelName } from '../registry/model-name.ts';
import type { ModelRegistry, ModelVersion } from '../registry/types.ts';
import { LATEST_ALIAS, versionNumber } from '../registry/version.ts';
import { UnknownModelError } from '../registry/errors.ts';
import { NoModelError } from './errors.ts';
import { LoadedModel, type ForwardOptions, type ModelInfo } from './loaded-model.ts';
import { waitAtMost } from '../lib/wait-at-most.ts';

/** Longest stop() waits for requests still using a model. */
const STOP_WAIT_MS = 5000;

export interface ModelManagerOptions {
  registry: ModelRegistry;
  /** Batch bounds and inference threads; read at each load, so a pool set on it before start() is used. */
  batching: ForwardOptions;
  /** How many explicitly requested (non-default) versions stay loaded; at least 1. */
  pinnedCacheSize: number;
  /** Periodic re-check of the defaults, in case an announcement was missed. */
  recheckIntervalMs: number;
  /** What a request that names no model gets (DEFAULT_MODEL; default "mnist"). */
  defaultModel?: string;
  /** Subscribe to the registry's announcements here; without it only the periodic re-check swaps. */
  redis?: RedisSettings;
  logger: Pick<Logger, 'info' | 'warn' | 'error'>;
  /** Sees every forward pass (for metrics). */
  onBatch?: (version: string, size: number) => void;
}

/** A model held for one request; call release() when done with it. */
export interface ModelLease {
  model: LoadedModel;
  release(): void;
}

/** How one model name is being served, for /readyz. */
export interface ServedModelStatus {
  name: string;
  /** The version the registry names as default, if any. */
  defaultVersion: string | null;
  /** The version requests get now (the default, or the last good one while the default cannot load). */
  servedVersion: string | null;
  /** Why the default is not what is served, or null when all is well. */
  problem: string | null;
}

/** While a name has nothing loaded, requests look at the registry themselves at most this often. */
const EMPTY_RECHECK_MS = 1000;

export class ModelManager {
  readonly defaultModel: string;
  /** Per model name: the model its default requests get. */
  private readonly served = new Map<string, LoadedModel>();
  /** Per model name: why its default could not be served (kept until it can). */
  private readonly problems = new Map<string, { version: string | null; problem: string }>();
  private readonly defaults = new Map<string, string | null>();
  /** Explicitly requested versions, least recently used first (Map keeps insertion order). */
  private readonly pinned = new Map<string, LoadedModel>();
  private readonly loading = new Map<string, Promise<void>>();
  private refreshing: Promise<void> | undefined;
  private refreshAgain = false;
  private lastRefresh = 0;
  private subscription: ModelSubscription | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly options: ModelManagerOptions;

  constructor(options: ModelManagerOptions) {
    this.options = options;
    this.defaultModel = checkModelName(options.defaultModel ?? DEFAULT_MODEL_NAME);
  }

  /** The model a bare request (DEFAULT_MODEL) gets, if any. */
  get active(): ModelInfo | undefined {
    return this.served.get(this.defaultModel)?.info;
  }

  /** Every known model name and what is served for it. */
  status(): ServedModelStatus[] {
    const names = [...new Set([...this.defaults.keys(), ...this.served.keys()])].sort();
    return names.map((name) => ({
      name,
      defaultVersion: this.defaults.get(name) ?? null,
      servedVersion: this.served.get(name)?.info.version ?? null,
      problem: this.problems.get(name)?.problem ?? null,
    }));
  }

  /** Every model loaded now: each name's served model, then the pinned versions (metrics). */
  loadedModels(): LoadedModel[] {
    return [...this.served.values(), ...this.pinned.values()];
  }

  /** Loads every name's default and starts following the registry. Never throws: the API runs without a model. */
  async start(): Promise<void> {
    await this.refresh();
    await this.subscribe();
    this.timer = setInterval(() => {
      void this.subscribe();
      void this.refresh();
    }, this.options.recheckIntervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.subscription?.close();
    this.subscription = undefined;
    await this.refreshing;
    const models = [...this.served.values(), ...this.pinned.values()];
    for (const model of models) model.retire();
    this.served.clear();
    this.pinned.clear();
    // Requests in flight finish on their model before this returns (the inference threads are
    // closed after it, and would fail them), within a bound so that a stuck one cannot hold shutdown.
    await waitAtMost(Promise.all(models.map((model) => model.disposal)), STOP_WAIT_MS);
  }

  /**
   * Re-reads the defaults and swaps the names whose default changed. Calls during a
   * refresh are folded into one more refresh after it, so the newest announcement always wins.
   */
  refresh(): Promise<void> {
    if (this.refreshing) {
      this.refreshAgain = true;
      return this.refreshing;
    }
    this.refreshing = (async () => {
      do {
        this.refreshAgain = false;
        this.lastRefresh = Date.now();
        await this.swapToDefaults().catch((error: unknown) =>
          this.options.logger.error({ err: error }, 'could not read the model registry; still serving the previous models'),
        );
      } while (this.refreshAgain && !this.stopped);
    })().finally(() => {
      this.refreshing = undefined;
    });
    return this.refreshing;
  }

  /**
   * The model for a request to model `name` (DEFAULT_MODEL when omitted): its
   * default version, or `version` when given (which must belong to `name`).
   * This is the one lookup every predict protocol uses. Throws NoModelError (503,
   * saying why), InvalidModelNameError, InvalidVersionError, UnknownModelError,
   * ModelNotFoundError, VersionNotInModelError.
   */
  async resolve(name: string = this.defaultModel, version?: string): Promise<ModelLease> {
    checkModelName(name);
    if (version === undefined || version === LATEST_ALIAS) {
      let model = this.served.get(name);
      if (!model && Date.now() - this.lastRefresh >= EMPTY_RECHECK_MS) {
        await this.refresh();
        model = this.served.get(name);
      }
      if (!model) {
        // Answered from what the last refresh saw, so a request for a bogus name costs no registry read.
        // A name nobody ever published under is not found (404, as TF Serving answers); the default model's absence is 503.
        if (!this.defaults.has(name) && name !== this.defaultModel) throw new UnknownModelError(name);
        throw new NoModelError(this.whyNothingServed(name));
      }
      return lease(model);
    }
    versionNumber(version); // InvalidVersionError before touching the registry
    const served = this.served.get(name);
    if (served?.info.version === version) return lease(served);
    const pinned = this.pinned.get(version);
    // Cached under its own name: no registry read. Otherwise check it belongs to `name` first.
    if (pinned?.info.model !== name) await this.options.registry.getVersion(name, version);
    return this.leasePinned(version);
  }

  /** Legacy lookup by version id alone (`?model=<version>`); "latest" or nothing means DEFAULT_MODEL's default. */
  async acquire(version: string = LATEST_ALIAS): Promise<ModelLease> {
    if (version === LATEST_ALIAS) return this.resolve(this.defaultModel);
    versionNumber(version);
    for (const model of this.served.values()) if (model.info.version === version) return lease(model);
    return this.leasePinned(version);
  }

  /** Loads a version and runs it once (what promotion requires); throws what went wrong. */
  async verify(version: ModelVersion): Promise<void> {
    const model = await LoadedModel.load(this.options.registry, version, this.options.batching);
    model.retire();
  }

  private async leasePinned(version: string): Promise<ModelLease> {
    for (;;) {
      const cached = this.pinned.get(version);
      if (cached) {
        this.pinned.delete(version); // re-inserted as most recently used
        this.pinned.set(version, cached);
        return lease(cached);
      }
      await this.loadPinned(version);
      // Loop: a concurrent load may have evicted it already; the next pass reloads it.
    }
  }

  private whyNothingServed(name: string): string {
    const problem = this.problems.get(name);
    if (problem) return `model ${JSON.stringify(name)} cannot be served: ${problem.problem}`;
    if (!this.defaults.has(name)) {
      return `no model has been published yet under ${JSON.stringify(name)} (DEFAULT_MODEL): train one with POST /v1/jobs (or \`digits train\`), then retry`;
    }
    const version = this.defaults.get(name);
    if (version === null || version === undefined) {
      return `model ${JSON.stringify(name)} has versions but no default version: promote one with POST /v1/models/${name}/versions/{version}/promote`;
    }
    return `model ${JSON.stringify(name)}: its default version ${version} is not loaded yet; retry shortly`;
  }

  /** Loads a pinned version into the LRU, once however many requests ask for it at the same time. */
  private async loadPinned(version: string): Promise<void> {
    let loading = this.loading.get(version);
    if (!loading) {
      loading = (async () => {
        const metadata = await this.options.registry.get(version);
        const model = await LoadedModel.load(this.options.registry, metadata, this.options.batching, this.options.onBatch);
        this.pinned.set(version, model);
        for (const [oldest, evicted] of this.pinned) {
          if (this.pinned.size <= this.options.pinnedCacheSize) break;
          this.pinned.delete(oldest);
          evicted.retire();
        }
      })().finally(() => this.loading.delete(version));
      this.loading.set(version, loading);
    }
    await loading;
  }

  private async subscribe(): Promise<void> {
    if (this.subscription || !this.options.redis || this.stopped) return;
    try {
      this.subscription = await subscribeToModels(
        this.options.redis,
        (announcement) => {
          this.options.logger.info({ announcement }, 'model announcement');
          if (announcement.type === 'deleted') this.forget(announcement.version);
          void this.refresh();
        },
        this.options.logger,
      );
    } catch (error) {
      this.options.logger.warn({ err: error }, 'cannot subscribe to model announcements yet; re-checking the registry periodically');
    }
  }

  /** Drops a deleted version from the pinned cache. */
  forget(version: string): void {
    const pinned = this.pinned.get(version);
    this.pinned.delete(version);
    pinned?.retire();
  }

  private async swapToDefaults(): Promise<void> {
    const models = await this.options.registry.models();
    // Names whose versions are all gone are forgotten (their last served model, if any, keeps serving).
    for (const name of [...this.defaults.keys()]) if (!models.some((m) => m.name === name)) this.defaults.delete(name);
    for (const { name, defaultVersion } of models) {
      if (this.stopped) return;
      this.defaults.set(name, defaultVersion);
      const current = this.served.get(name);
      if (defaultVersion === null) {
        // Keep serving what we have (a default pointer never disappears by itself); say so.
        if (current) this.problems.set(name, { version: null, problem: `it has no default version; still serving ${current.info.version}` });
        continue;
      }
      if (defaultVersion === current?.info.version) {
        this.problems.delete(name);
        continue;
      }
      // A default that failed once is retried only when the default changes or every recheck interval.
      await this.swap(name, defaultVersion, current);
    }
  }

  private async swap(name: string, version: string, current: LoadedModel | undefined): Promise<void> {
    let next: LoadedModel;
    try {
      const pinned = this.pinned.get(version);
      this.pinned.delete(version);
      next = pinned ?? (await LoadedModel.load(this.options.registry, await this.options.registry.get(version), this.options.batching, this.options.onBatch));
    } catch (error) {
      const message = (error as Error).message;
      const problem = current
        ? `its default version ${version} cannot be loaded (${message}); still serving ${current.info.version}`
        : `its default version ${version} cannot be loaded: ${message}`;
      if (this.problems.get(name)?.problem !== problem) {
        this.options.logger.error({ err: error, model: name, version }, 'could not load the default version; keeping the last good model');
      }
      this.problems.set(name, { version, problem });
      return;
    }
    if (this.stopped) return next.retire();
    this.served.set(name, next);
    this.problems.delete(name);
    current?.retire();
    this.options.logger.info({ model: name, version: next.info.version, previous: current?.info.version ?? null }, 'serving model');
  }
}

function lease(model: LoadedModel): ModelLease {
  model.acquire();
  let released = false;
  return {
    model,
    release() {
      if (released) return;
      released = true;
      model.release();
    },
  };
}
