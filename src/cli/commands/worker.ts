// `digits worker`: one training worker (concurrency 1; run one per GPU or core).
// SIGINT/SIGTERM stop the running training at the next batch boundary and put
// the job back in the queue (its checkpoint is kept), then exit.
import { datasetDir, loadConfig } from '../../lib/config.ts';
import { createLogger } from '../../lib/logger.ts';
import { redisSettings } from '../../lib/redis.ts';
import { startTrainingWorker } from '../../queue/worker.ts';
import { announceModel } from '../../registry/announcements.ts';
import { FileSystemRegistry } from '../../registry/filesystem.ts';
import type { ModelVersion } from '../../registry/types.ts';
import { helpRequested } from '../args.ts';

export const HELP = `Usage: digits worker

Takes training jobs from the queue one at a time. Configuration comes from the
environment: REDIS_URL (default redis://127.0.0.1:6379), DATA_DIR, MODEL_DIR,
MNIST_DIR, FASHION_MNIST_DIR, ENGINE, LOG_LEVEL, QUEUE_PREFIX,
WORKER_LOCK_DURATION_MS, WORKER_STALLED_INTERVAL_MS.
`;

export async function run(argv: string[]): Promise<number> {
  if (helpRequested(argv, HELP)) return 0;
  // Started by `digits up` with an IPC channel (process.send exists): stop too when that
  // parent dies. Checked from the start: a parent that died while we were starting (it was
  // SIGKILLed, its redis-server went with it) must not leave us waiting for Redis forever;
  // the channel may already be gone, its 'disconnect' emitted before anyone listened.
  let onParentGone: () => void = () => process.exit(1); // nothing taken from the queue yet
  if (process.send) {
    if (!process.connected) onParentGone();
    process.channel?.unref();
    process.once('disconnect', () => onParentGone());
  }
  const config = loadConfig();
  const redis = redisSettings(config);
  const logger = createLogger(config, { component: 'worker' });
  const registry = new FileSystemRegistry(config.modelDir, { defaultModel: config.defaultModel });
  const verifyLoadable = async (version: ModelVersion) => {
    const { LoadedModel } = await import('../../serving/loaded-model.ts');
    (await LoadedModel.load(registry, version, { maxBatch: 1, maxWaitMs: 0 })).retire();
  };

  const worker = await startTrainingWorker({
    ...redis,
    lockDurationMs: config.workerLockDurationMs,
    stalledIntervalMs: config.workerStalledIntervalMs,
    logger,
    processor: {
      dataDir: config.dataDir,
      datasetDir: (dataset) => datasetDir(config, dataset),
      engine: config.engine,
      // The version must load and run before it may become a default (tfjs is only loaded then).
      publish: (modelDir, metadata, options) => registry.publish(modelDir, metadata, { ...options, verify: verifyLoadable }),
      announce: (connection, model) => announceModel(connection, redis.prefix, { type: 'published', version: model.version, model: model.model }),
    },
  });

  await new Promise<void>((resolve) => {
    const stop = (signal: NodeJS.Signals | 'disconnect') => {
      logger.info({ signal }, 'shutting down');
      // A second Ctrl-C does not wait for the training thread to reach a batch boundary.
      if (signal !== 'disconnect') process.once(signal, () => process.exit(130));
      setTimeout(() => {
        logger.error({ timeoutMs: config.shutdownTimeoutMs }, 'shutdown timed out; the job will be recovered as stalled');
        process.exit(1);
      }, config.shutdownTimeoutMs).unref();
      void worker.close().then(resolve);
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    onParentGone = () => stop('disconnect');
  });
  logger.info('worker stopped');
  // With Redis gone, BullMQ's retry timers would hold the process a few more seconds; unref'd, this only fires then.
  setTimeout(() => process.exit(0), 1000).unref();
  return 0;
}
