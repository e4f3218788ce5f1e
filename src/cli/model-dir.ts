// What the model-reading commands (evaluate, export, predict) accept as a model
// directory, checked before any data set or engine is loaded, with errors that say
// what was found instead.
import { readFile, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { isVersion } from '../registry/version.ts';
import { MODEL_JSON } from '../model/artifacts.ts';
import { UsageError } from './args.ts';

/**
 * The model directory `path` stands for: a directory with model.json, or a registry
 * pointer file (MODEL_DIR/latest, MODEL_DIR/defaults/<name>) naming a version, which
 * means MODEL_DIR/versions/<version>.
 */
export async function resolveModelDir(path: string, flag: string): Promise<string> {
  const absolute = resolve(path);
  const found = await stat(absolute).catch(() => undefined);
  if (!found) throw new UsageError(`${flag} ${path}: no such file or directory`);
  if (found.isFile()) {
    const pointed = await registryPointer(absolute);
    if (pointed) return pointed;
    throw new UsageError(`${flag} ${path} is a file; give a model directory (model.json, weights.bin, metadata.json)`);
  }
  if (!found.isDirectory()) throw new UsageError(`${flag} ${path} is not a directory`);
  if (!(await isFile(join(absolute, MODEL_JSON)))) {
    const registry = (await stat(join(absolute, 'versions')).catch(() => undefined))?.isDirectory();
    throw new UsageError(
      registry
        ? `${flag} ${path} is a model registry; give one of its versions (${join(path, 'versions', '<version>')})`
        : `${flag} ${path} has no ${MODEL_JSON}; a model directory holds model.json, weights.bin and metadata.json`,
    );
  }
  return absolute;
}

/** MODEL_DIR/latest or MODEL_DIR/defaults/<name>: one line naming a version under MODEL_DIR/versions. */
async function registryPointer(file: string): Promise<string | undefined> {
  const root = basename(dirname(file)) === 'defaults' ? dirname(dirname(file)) : dirname(file);
  const text = await readFile(file, 'utf8').catch(() => '');
  const version = text.slice(0, 200).trim();
  if (!isVersion(version)) return undefined;
  const dir = join(root, 'versions', version);
  return (await isFile(join(dir, MODEL_JSON))) ? dir : undefined;
}

async function isFile(path: string): Promise<boolean> {
  return (await stat(path).catch(() => undefined))?.isFile() ?? false;
}

/** Every input file exists and is a file (before any request or model load). */
export async function checkInputFiles(files: string[]): Promise<void> {
  for (const file of files) {
    const found = await stat(file).catch(() => undefined);
    if (!found) throw new UsageError(`${file}: no such file`);
    if (!found.isFile()) throw new UsageError(`${file} is not a file`);
  }
}
