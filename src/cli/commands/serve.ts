// `digits serve`: the HTTP API. SIGINT/SIGTERM stop taking requests, let the
// ones in flight finish (up to SHUTDOWN_TIMEOUT_MS) and exit.
import { startApi } from '../../api/server.ts';
import { loadConfig } from '../../lib/config.ts';
import { createLogger } from '../../lib/logger.ts';
import { helpRequested } from '../args.ts';

export const HELP = `Usage: digits serve

Runs the HTTP API (openapi.yaml describes it). Configuration comes from the
environment: PORT (3000), HOST (0.0.0.0), REDIS_URL (redis://127.0.0.1:6379),
MODEL_DIR (./models), DATA_DIR (./data), LOG_LEVEL (info), API_KEYS,
BODY_LIMIT (1mb), CORS_ORIGIN, SHUTDOWN_TIMEOUT_MS (10000), QUEUE_PREFIX,
PREDICT_API_KEYS, REQUEST_TIMEOUT_MS (30000), HEADERS_TIMEOUT_MS (10000),
KEEP_ALIVE_TIMEOUT_MS (72000), PREDICT_MAX_REQUEST_PIXELS (24000000),
PREDICT_DECODE_CONCURRENCY (cores − 1, 1–3), INFERENCE_THREADS (cores − 1,
at least 1; 0 runs forward passes on the event loop); README.md lists them all.
`;

export async function run(argv: string[]): Promise<number> {
  if (helpRequested(argv, HELP)) return 0;
  const config = loadConfig();
  const logger = createLogger(config, { process: 'api' });
  const api = await startApi(config, logger);
  logger.info({ url: api.url, modelDir: config.modelDir }, 'API listening');

  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  logger.info({ signal }, 'shutting down');
  // A second signal, or a shutdown that hangs, ends the process anyway.
  process.once(signal, () => process.exit(130));
  setTimeout(() => {
    logger.error({ timeoutMs: config.shutdownTimeoutMs }, 'shutdown timed out');
    process.exit(1);
  }, config.shutdownTimeoutMs).unref();
  await api.close();
  logger.info('API stopped');
  return 0;
}
