// Starts a private redis-server child process: used by `digits up` when
// REDIS_URL is unset, and by the test suite so tests never touch shared data.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { delimiter, join } from 'node:path';
import { accessSync, constants } from 'node:fs';

export class RedisServerNotFoundError extends Error {
  constructor() {
    super(
      'No redis-server binary found on PATH. Install one (Debian/Ubuntu: `apt-get install -y redis-server`, ' +
        'macOS: `brew install redis`), or set REDIS_URL to an existing Redis, or run `docker compose up`.',
    );
    this.name = 'RedisServerNotFoundError';
  }
}

export interface RedisServerOptions {
  /** Directory for the append-only file; omit for a purely in-memory server. */
  dataDir?: string;
  port?: number;
  /**
   * Run in its own process group, so a terminal's Ctrl-C reaches only the parent,
   * which can then stop workers (handing their jobs back) before stopping Redis.
   */
  ownProcessGroup?: boolean;
}

export interface RunningRedisServer {
  url: string;
  port: number;
  process: ChildProcess;
  stop(): Promise<void>;
}

export function findRedisServerBinary(): string | undefined {
  return findBinary('redis-server');
}

function findBinary(name: string): string | undefined {
  const dirs = (process.env.PATH ?? '').split(delimiter).concat(['/usr/bin', '/usr/local/bin', '/usr/sbin']);
  for (const dir of dirs) {
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // keep looking
    }
  }
  return undefined;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`redis-server did not start listening on port ${port} within ${timeoutMs} ms`);
}

export async function startRedisServer(options: RedisServerOptions = {}): Promise<RunningRedisServer> {
  const binary = findRedisServerBinary();
  if (!binary) throw new RedisServerNotFoundError();
  const port = options.port ?? (await freePort());
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--protected-mode', 'yes'];
  if (options.dataDir) {
    mkdirSync(options.dataDir, { recursive: true });
    args.push('--appendonly', 'yes', '--dir', options.dataDir);
  } else {
    args.push('--appendonly', 'no');
  }
  // The server must not outlive us, even when we are SIGKILLed and cannot stop it (it runs
  // in its own process group, out of reach of a signal to ours). util-linux's setpriv
  // asks the kernel to SIGTERM it when its parent dies (PR_SET_PDEATHSIG, kept across exec).
  const setpriv = process.platform === 'linux' ? findBinary('setpriv') : undefined;
  const [command, commandArgs] = setpriv ? [setpriv, ['--pdeathsig', 'SIGTERM', '--', binary, ...args]] : [binary, args];
  const child = spawn(command, commandArgs, { stdio: ['ignore', 'ignore', 'inherit'], detached: options.ownProcessGroup ?? false });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await Promise.race([
    waitForPort(port, 10_000),
    exited.then(() => {
      throw new Error(`redis-server exited during start-up (port ${port})`);
    }),
  ]);
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    process: child,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        await exited;
      }
    },
  };
}
