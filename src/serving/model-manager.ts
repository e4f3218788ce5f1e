// Which models the API serves. The registry's `latest` is loaded at start-up and
// hot-swapped when a version is published or promoted: the registry's Redis
// announcement triggers a re-check at once, and a periodic re-check catches any
// announcement missed while Redis was away. The new model is loaded and warmed
// up before the swap; the old one is disposed when its last request ends.
// Versions pinned with ?model= are kept in a small LRU beside `latest`.
import type { Logger } from '../lib/logger.ts';
import { subscribeToModels, type ModelSubscription } from '../registry/announcements.ts';
import type { ModelRegistry } from '../registry/types.ts';
import { LATEST_ALIAS, versionNumber } from '../registry/version.ts';
import { NoModelError } from './errors.ts';
import { LoadedModel, type ModelInfo } from './loaded-model.ts';
import type { MicroBatcherOptions } from './micro-batcher.ts';

export interface ModelManagerOptions {
  registry: ModelRegistry;
  batching: MicroBatcherOptions;
  /** How many pinned (non-latest) versions stay loaded; at least 1. */
  pinnedCacheSize: number;
  /** Periodic re-check of `latest`, in case an announcement was missed. */
  recheckIntervalMs: number;
  /** Subscribe to the registry's announcements here; without it only the periodic re-check swaps. */
  redisUrl?: string;
  logger: Pick<Logger, 'info' | 'warn' | 'error'>;
  /** Sees every forward pass (for metrics). */
  onBatch?: (version: string, size: number) => void;
}

/** A model held for one request; call release() when done with it. */
export interface ModelLease {
  model: LoadedModel;
  release(): void;
}

/** While nothing is loaded, requests look at the registry themselves at most this often. */
const EMPTY_RECHECK_MS = 1000;

export class ModelManager {
  private current: LoadedModel | undefined;
  /** Pinned versions, least recently used first (Map keeps insertion order). */
  private readonly pinned = new Map<string, LoadedModel>();
  private readonly loading = new Map<string, Promise<void>>();
  private refreshing: Promise<void> | undefined;
  private refreshAgain = false;
  private lastRefresh = 0;
  private subscription: ModelSubscription | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(private readonly options: ModelManagerOptions) {}

  /** The model `latest` requests get, if any. */
  get active(): ModelInfo | undefined {
    return this.current?.info;
  }

  /** Every model loaded now: `latest` first, then the pinned versions. */
  loadedModels(): LoadedModel[] {
    return [...(this.current ? [this.current] : []), ...this.pinned.values()];
  }

  /** Loads `latest` (if there is one) and starts following the registry. Never throws: the API runs without a model. */
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
    this.current?.retire();
    this.current = undefined;
    for (const model of this.pinned.values()) model.retire();
    this.pinned.clear();
  }

  /**
   * Re-reads `latest` and swaps to it if it changed. Calls during a refresh are
   * folded into one more refresh after it, so the newest announcement always wins.
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
        await this.swapToLatest().catch((error: unknown) =>
          this.options.logger.error({ err: error }, 'could not load the latest model; still serving the previous one'),
        );
      } while (this.refreshAgain && !this.stopped);
    })().finally(() => {
      this.refreshing = undefined;
    });
    return this.refreshing;
  }

  /** The model for a request: `latest` by default, or a pinned version. Throws NoModelError, InvalidVersionError, ModelNotFoundError. */
  async acquire(version: string = LATEST_ALIAS): Promise<ModelLease> {
    if (version === LATEST_ALIAS || version === this.current?.info.version) {
      if (!this.current && Date.now() - this.lastRefresh >= EMPTY_RECHECK_MS) await this.refresh();
      if (!this.current) throw new NoModelError();
      return lease(this.current);
    }
    versionNumber(version); // InvalidVersionError before touching the registry
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
    if (this.subscription || !this.options.redisUrl || this.stopped) return;
    try {
      this.subscription = await subscribeToModels(this.options.redisUrl, (announcement) => {
        this.options.logger.info({ announcement }, 'model announcement');
        void this.refresh();
      });
    } catch (error) {
      this.options.logger.warn({ err: error }, 'cannot subscribe to model announcements yet; re-checking the registry periodically');
    }
  }

  private async swapToLatest(): Promise<void> {
    const latest = await this.options.registry.latest();
    if (!latest || latest.version === this.current?.info.version || this.stopped) return;
    const pinned = this.pinned.get(latest.version);
    this.pinned.delete(latest.version);
    const next = pinned ?? (await LoadedModel.load(this.options.registry, latest, this.options.batching, this.options.onBatch));
    if (this.stopped) return next.retire();
    const previous = this.current;
    this.current = next;
    previous?.retire();
    this.options.logger.info({ version: next.info.version, previous: previous?.info.version ?? null }, 'serving model');
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
