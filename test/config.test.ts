import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/lib/config.ts';

describe('loadConfig', () => {
  it('uses the documented defaults for an empty environment', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      port: 3000,
      host: '0.0.0.0',
      modelDir: resolve('models'),
      dataDir: resolve('data'),
      engine: 'auto',
      logLevel: 'info',
      apiKeys: [],
      bodyLimit: 1024 * 1024,
      shutdownTimeoutMs: 10_000,
    });
    for (const optional of ['redisUrl', 'mnistDir', 'fashionMnistDir', 'corsOrigin']) expect(config).not.toHaveProperty(optional);
  });

  it('reads every variable, treating empty values as unset', () => {
    const config = loadConfig({
      PORT: '8080',
      HOST: '127.0.0.1',
      REDIS_URL: 'redis://cache:6379/2',
      MODEL_DIR: '/srv/models',
      DATA_DIR: 'var/data',
      MNIST_DIR: '/data/mnist',
      FASHION_MNIST_DIR: '',
      ENGINE: 'WASM',
      LOG_LEVEL: 'debug',
      API_KEYS: ' a-key ,, another ',
      BODY_LIMIT: '2mb',
      CORS_ORIGIN: 'https://a.example, http://localhost:5173/',
      SHUTDOWN_TIMEOUT_MS: '500',
    });
    expect(config).toMatchObject({
      port: 8080,
      host: '127.0.0.1',
      redisUrl: 'redis://cache:6379/2',
      modelDir: '/srv/models',
      dataDir: resolve('var/data'),
      mnistDir: '/data/mnist',
      engine: 'wasm',
      logLevel: 'debug',
      apiKeys: ['a-key', 'another'],
      bodyLimit: 2 * 1024 * 1024,
      corsOrigin: ['https://a.example', 'http://localhost:5173'],
      shutdownTimeoutMs: 500,
    });
    expect(config).not.toHaveProperty('fashionMnistDir');
    expect(loadConfig({ CORS_ORIGIN: '*', BODY_LIMIT: '512kb' })).toMatchObject({ corsOrigin: '*', bodyLimit: 512 * 1024 });
  });

  it.each([
    ['PORT', 'abc', 'PORT: expected an integer 1–65535, got "abc"'],
    ['PORT', '70000', 'PORT: expected an integer 1–65535, got "70000"'],
    ['PORT', '3000.5', 'PORT: expected an integer 1–65535, got "3000.5"'],
    ['REDIS_URL', 'localhost:6379', 'REDIS_URL: expected a redis:// or rediss:// URL, got "localhost:6379"'],
    ['ENGINE', 'tpu', 'ENGINE: expected one of auto, gpu, node, wasm, cpu, got "tpu"'],
    ['LOG_LEVEL', 'verbose', 'LOG_LEVEL: expected one of fatal, error, warn, info, debug, trace, silent, got "verbose"'],
    ['BODY_LIMIT', 'lots', 'BODY_LIMIT: expected a size such as 1048576, 512kb or 2mb (at most 1024mb), got "lots"'],
    ['CORS_ORIGIN', 'example.com', 'CORS_ORIGIN: expected * or comma-separated origins like https://example.com, got "example.com"'],
    ['SHUTDOWN_TIMEOUT_MS', '-1', 'SHUTDOWN_TIMEOUT_MS: expected an integer 0–600000, got "-1"'],
  ])('rejects %s=%j with a ConfigError naming it', (variable, value, message) => {
    let thrown: unknown;
    try {
      loadConfig({ [variable]: value });
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(ConfigError);
    expect((thrown as ConfigError).message).toBe(message);
    expect((thrown as ConfigError).variable).toBe(variable);
  });
});

describe('key scopes and request limits', () => {
  it('has documented defaults and reads overrides', () => {
    expect(loadConfig({})).toMatchObject({
      predictApiKeys: [],
      predictMaxRequestPixels: 24_000_000,
      requestTimeoutMs: 30_000,
      headersTimeoutMs: 10_000,
      keepAliveTimeoutMs: 72_000,
    });
    expect(loadConfig({}).predictDecodeConcurrency).toBeGreaterThanOrEqual(1);
    expect(loadConfig({}).predictDecodeConcurrency).toBeLessThanOrEqual(3);
    expect(
      loadConfig({
        API_KEYS: 'a',
        PREDICT_API_KEYS: 'p1, p2',
        PREDICT_MAX_REQUEST_PIXELS: '1000000',
        PREDICT_DECODE_CONCURRENCY: '2',
        REQUEST_TIMEOUT_MS: '5000',
        HEADERS_TIMEOUT_MS: '2000',
        KEEP_ALIVE_TIMEOUT_MS: '1000',
      }),
    ).toMatchObject({
      apiKeys: ['a'],
      predictApiKeys: ['p1', 'p2'],
      predictMaxRequestPixels: 1_000_000,
      predictDecodeConcurrency: 2,
      requestTimeoutMs: 5000,
      headersTimeoutMs: 2000,
      keepAliveTimeoutMs: 1000,
    });
  });

  it.each([
    [{ PREDICT_API_KEYS: 'p' }, 'PREDICT_API_KEYS', /set API_KEYS too/],
    [{ HEADERS_TIMEOUT_MS: '40000' }, 'HEADERS_TIMEOUT_MS', /must not exceed REQUEST_TIMEOUT_MS \(30000\)/],
    [{ REQUEST_TIMEOUT_MS: '0' }, 'REQUEST_TIMEOUT_MS', /expected an integer 100–600000/],
    [{ PREDICT_DECODE_CONCURRENCY: '0' }, 'PREDICT_DECODE_CONCURRENCY', /expected an integer 1–64/],
  ])('refuses %j', (env, variable, message) => {
    expect(() => loadConfig(env)).toThrow(message);
    try {
      loadConfig(env);
    } catch (error) {
      expect((error as ConfigError).variable).toBe(variable);
    }
  });
});
