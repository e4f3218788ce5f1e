// `digits up` (= `npm start`): the whole service on one machine. A private
// redis-server child (AOF persistence under DATA_DIR/redis, so queued jobs
// survive a restart) unless REDIS_URL is set, one worker child process, and the
// API in this process. SIGINT/SIGTERM stop them in order: the API stops taking
// requests, the worker puts its job back in the queue and exits, then Redis.
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startApi } from '../../api/server.ts';
import { loadConfig } from '../../lib/config.ts';
import { createLogger } from '../../lib/logger.ts';
import { startRedisServer, type RunningRedisServer } from '../../lib/redis-server.ts';
import { helpRequested } from '../args.ts';

export const HELP = `Usage: digits up

Runs the API, one training worker and, when REDIS_URL is unset, a private
redis-server (data in DATA_DIR/redis). Ctrl-C stops all of them.
Configuration: the environment variables of \`digits serve\` and \`digits worker\`.
`;

const DIGITS_BIN = fileURLToPath(new URL('../../../bin/digits.mjs', import.meta.url));

function spawnWorker(redisUrl: string): ChildProcess {
  return spawn(process.execPath, [DIGITS_BIN, 'worker'], {
    env: { ...process.env, REDIS_URL: redisUrl },
    // Its own process group: a terminal's Ctrl-C reaches only us, and we stop the
    // worker before Redis. The IPC channel lets it notice if we die without telling it.
    detached: true,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
}

/** SIGTERM, then SIGKILL if it has not exited within timeoutMs. */
async function stopChild(child: ChildProcess, timeoutMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  await exited;
  clearTimeout(timer);
}

export async function run(argv: string[]): Promise<number> {
  if (helpRequested(argv, HELP)) return 0;
  const config = loadConfig();
  const logger = createLogger(config, { process: 'up' });

  let redis: RunningRedisServer | undefined;
  if (!config.redisUrl) {
    const dataDir = join(config.dataDir, 'redis');
    // Throws RedisServerNotFoundError, whose message says how to install one or what to use instead.
    redis = await startRedisServer({ dataDir, ownProcessGroup: true });
    logger.info({ url: redis.url, pid: redis.process.pid, dataDir }, 'private redis-server started');
  }
  const redisUrl = config.redisUrl ?? redis!.url;

  const worker = spawnWorker(redisUrl);
  const workerExited = new Promise<string>((resolve) =>
    worker.once('exit', (code, signal) => resolve(`worker exited (${signal ?? `code ${code}`})`)),
  );
  let api: Awaited<ReturnType<typeof startApi>> | undefined;
  try {
    api = await startApi({ ...config, redisUrl }, logger);
  } catch (error) {
    await stopChild(worker, config.shutdownTimeoutMs);
    await redis?.stop();
    throw error;
  }
  logger.info({ url: api.url, workerPid: worker.pid, redisPid: redis?.process.pid ?? null }, 'digits is up');

  const reason = await Promise.race([
    new Promise<string>((resolve) => {
      process.once('SIGINT', () => resolve('SIGINT'));
      process.once('SIGTERM', () => resolve('SIGTERM'));
    }),
    workerExited,
  ]);
  const workerDied = reason.startsWith('worker');
  if (workerDied) logger.error({ reason }, 'the worker stopped unexpectedly; shutting down');
  else logger.info({ signal: reason }, 'shutting down');
  // A second Ctrl-C gives up waiting.
  process.once('SIGINT', () => process.exit(130));

  await api.close();
  await stopChild(worker, config.shutdownTimeoutMs);
  await redis?.stop();
  logger.info('stopped');
  const code = workerDied ? 1 : 0;
  // Everything we started has stopped. Threads a library left running (the wasm
  // engine's pthread pool) must not keep the process alive; unref'd, this timer
  // only fires if something does.
  setTimeout(() => process.exit(code), 1000).unref();
  return code;
}
