// The command line's rough edges (issue 13), through the real binary: every command
// has --help, a negative number is a value the flag's own check judges, missing
// inputs and models are named as such (not as a raw ENOENT/ENOTDIR or a download
// failure), and a registry's pointer files (MODEL_DIR/latest, defaults/NAME) work as --model.
import { execFile } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { FileSystemRegistry } from '../src/registry/filesystem.ts';
import { DEFAULT_PRESET, PRESETS } from '../src/training/recipe.ts';
import { REPO_ROOT } from './helpers/jobs.ts';
import { pngOf, seedNetOutput, strokePixels } from './helpers/serving.ts';

const execFileAsync = promisify(execFile);
let offlineDataDir: string;

/** Runs `digits …` with no local MNIST configured (so a data set would have to be downloaded). */
function digits(...args: string[]) {
  const { MNIST_DIR: _mnist, FASHION_MNIST_DIR: _fashion, ...env } = process.env;
  return execFileAsync(process.execPath, [join(REPO_ROOT, 'bin', 'digits.mjs'), ...args], {
    cwd: REPO_ROOT,
    timeout: 60_000,
    env: { ...env, DATA_DIR: offlineDataDir },
  });
}

async function failure(...args: string[]) {
  const result = await digits(...args).then(
    (ok) => ({ code: 0, ...ok }),
    (error: { code: number; stdout: string; stderr: string }) => error,
  );
  expect(result.code, `digits ${args.join(' ')} should fail`).toBe(1);
  return result.stderr;
}

beforeAll(async () => {
  offlineDataDir = await mkdtemp(join(tmpdir(), 'cli-edges-data-'));
});

describe('digits CLI: help', () => {
  it.each(['train', 'evaluate', 'summary', 'export', 'predict', 'serve', 'worker', 'up', 'health'])('%s --help prints its usage and exits 0', async (command) => {
    const { stdout, stderr } = await digits(command, '--help');
    expect(stdout).toMatch(new RegExp(`^Usage: digits ${command}`));
    expect(stderr).toBe('');
  });

  it("train --help gives the default preset's values, not another preset's", async () => {
    const { stdout } = await digits('train', '--help');
    const preset = PRESETS[DEFAULT_PRESET];
    expect(stdout).toMatch(new RegExp(`--seed N\\s+\\(default: the preset's, ${preset.seed}\\)`));
    expect(stdout).toMatch(new RegExp(`--epochs N\\s+\\(default: the preset's, ${preset.epochs};`));
  });
});

describe('digits CLI: errors that say what is wrong', () => {
  it.each([
    // The words are the one recipe schema's (training/recipe.ts RECIPE_FIELDS), shared with the job API.
    [['train', '--epochs', '-1'], '--epochs Too small: expected number to be >=1, got "-1"'],
    [['train', '--lr', '-0.5', '--epochs', '0'], '--epochs Too small: expected number to be >=1, got "0"'],
    [['train', '--seed', '-3'], '--seed Too small: expected number to be >=0, got "-3"'],
  ])('%j names the flag and its bound, not "argument is ambiguous"', async (args, message) => {
    const stderr = await failure(...args);
    expect(stderr).toContain(message);
    expect(stderr).not.toMatch(/ambiguous/);
  });

  it('predict with a file that does not exist says so, without a raw ENOENT', async () => {
    const stderr = await failure('predict', 'nofile.png');
    expect(stderr).toBe('digits predict: nofile.png: no such file\n');
  });

  it('evaluate --model /nonexistent reports the missing model, not an MNIST download failure', async () => {
    const stderr = await failure('evaluate', '--model', '/nonexistent');
    expect(stderr).toBe('digits evaluate: --model /nonexistent: no such file or directory\n');
  });

  it('a directory without model.json, a registry root and a plain file are each named for what they are', async () => {
    const registry = new FileSystemRegistry(await mkdtemp(join(tmpdir(), 'cli-edges-registry-')));
    await registry.publish(await seedNetOutput(7));
    expect(await failure('evaluate', '--model', offlineDataDir)).toContain(`--model ${offlineDataDir} has no model.json`);
    expect(await failure('evaluate', '--model', registry.root)).toContain(`--model ${registry.root} is a model registry; give one of its versions`);
    expect(await failure('predict', '--model-dir', join(REPO_ROOT, 'README.md'), join(REPO_ROOT, 'README.md'))).toContain('README.md is a file; give a model directory');
  });
});

describe('digits predict --model MODEL_DIR/latest', () => {
  it("classifies locally with the version a registry's pointer file names (was ENOTDIR)", async () => {
    const registry = new FileSystemRegistry(await mkdtemp(join(tmpdir(), 'cli-edges-registry-')));
    const { version } = await registry.publish(await seedNetOutput(42));
    // The legacy pointer of registries from before named models, and the per-name default.
    await writeFile(join(registry.root, 'latest'), `${version}\n`);
    const image = join(await mkdtemp(join(tmpdir(), 'cli-edges-png-')), 'two.png');
    await writeFile(image, await pngOf(strokePixels(2)));
    for (const pointer of [join(registry.root, 'latest'), join(registry.root, 'defaults', 'mnist')]) {
      const flag = pointer.endsWith('latest') ? '--model' : '--model-dir';
      const { stdout } = await digits('predict', flag, pointer, image, '--json');
      const result = JSON.parse(stdout) as { predictions: { file: string; label: number }[]; model: { version: string } };
      expect(result.model.version).toBe(version);
      expect(result.predictions).toHaveLength(1);
      expect(result.predictions[0]!.file).toBe(image);
    }
  });
});
