// One private redis-server for the whole test run (unless REDIS_URL is given),
// so tests never touch anyone's data and run where Redis is installed but not running.
import type { TestProject } from 'vitest/node';
import { startRedisServer, type RunningRedisServer } from '../src/lib/redis-server.ts';

let server: RunningRedisServer | undefined;

declare module 'vitest' {
  export interface ProvidedContext {
    redisUrl: string;
  }
}

export async function setup(project: TestProject): Promise<void> {
  let url = process.env.REDIS_URL;
  if (!url) {
    server = await startRedisServer();
    url = server.url;
  }
  project.provide('redisUrl', url);
}

export async function teardown(): Promise<void> {
  await server?.stop();
}
