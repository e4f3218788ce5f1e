// The composition root (createApiServices) builds the API's services from the
// config alone: the queue, model announcements and the serving subscription all
// use the config's Redis and prefix (before, every API subscribed to
// redis://127.0.0.1:6379 whatever REDIS_URL said), and without Redis it opens
// no connection at all.
import { Redis } from 'ioredis';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { buildApp } from '../src/api/app.ts';
import { createApiServices } from '../src/api/services.ts';
import { loadConfig } from '../src/lib/config.ts';
import { createLogger } from '../src/lib/logger.ts';
import { DEFAULT_REDIS_URL, redisSettings } from '../src/lib/redis.ts';
import { modelsChannel } from '../src/registry/announcements.ts';

let root: string;
let redis: Redis;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'services-test-'));
  redis = new Redis(inject('redisUrl'));
});
afterAll(async () => {
  await redis.quit();
  await rm(root, { recursive: true, force: true });
});

describe('createApiServices', () => {
  it('subscribes to model announcements on the configured Redis, on the prefix channel', async () => {
    const prefix = `test-services-${process.pid}`;
    const config = loadConfig({ MODEL_DIR: join(root, 'models'), LOG_LEVEL: 'silent', REDIS_URL: inject('redisUrl'), QUEUE_PREFIX: prefix });
    const services = await createApiServices(config, { logger: createLogger(config) });
    const app = await buildApp({ config, ...services });
    try {
      await app.ready();
      expect(services.redis).toEqual({ redisUrl: inject('redisUrl'), prefix });
      expect(services.jobs).toBeDefined();
      await expect.poll(async () => (await redis.pubsub('NUMSUB', modelsChannel(prefix)))[1]).toBe(1);
      expect(modelsChannel(prefix)).toBe(`${prefix}:models`);
    } finally {
      await app.close();
      await services.close();
    }
    await expect.poll(async () => (await redis.pubsub('NUMSUB', modelsChannel(prefix)))[1]).toBe(0);
  });

  it('opens no Redis connection with redis: false (a registry-only API)', async () => {
    const config = loadConfig({ MODEL_DIR: join(root, 'models'), LOG_LEVEL: 'silent' });
    const services = await createApiServices(config, { logger: createLogger(config), redis: false });
    expect(services.jobs).toBeUndefined();
    expect(services.announce).toBeUndefined();
    expect(services.redis).toBeUndefined();
    await services.close();
  });

  it('applies the REDIS_URL default in one place, keeping QUEUE_PREFIX', () => {
    expect(redisSettings(loadConfig({}))).toEqual({ redisUrl: DEFAULT_REDIS_URL, prefix: 'digits' });
    expect(redisSettings(loadConfig({ REDIS_URL: 'redis://cache:6380/1', QUEUE_PREFIX: 'blue' }))).toEqual({ redisUrl: 'redis://cache:6380/1', prefix: 'blue' });
  });
});
