// A checkpoint after every epoch: model weights (incl. BatchNorm running stats),
// optimizer momentum, the epoch and metrics so far. Each one is a directory
// checkpoint/epoch-NNNN; checkpoint/latest.json names the newest complete one and
// is replaced atomically, so a crash mid-write leaves the previous checkpoint valid.
import * as tf from '@tensorflow/tfjs';
import { mkdir, readFile, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../lib/atomic-write.ts';
import type { EpochMetrics, Recipe } from './types.ts';

type NamedTensor = { name: string; tensor: tf.Tensor };

export interface CheckpointState {
  format: 'digits-checkpoint/1';
  epoch: number;
  recipe: Recipe;
  metrics: EpochMetrics[];
  /**
   * Where the learning-rate schedule stands: steps done of totalSteps and the last rate set.
   * The rate is a pure function of the step (schedule.ts), so this is its whole state;
   * absent in checkpoints written before schedules existed (constant rate).
   */
  schedule?: { name: string; step: number; totalSteps: number; learningRate: number };
  /** Total seconds spent training before this checkpoint (across resumes). */
  createdAt: string;
}

export interface Checkpoint {
  state: CheckpointState;
  modelWeights: tf.NamedTensorMap;
  optimizerWeights: NamedTensor[];
}

export class CheckpointError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CheckpointError';
  }
}

const POINTER = 'latest.json';

async function writeWeights(dir: string, file: string, tensors: NamedTensor[]): Promise<tf.io.WeightsManifestEntry[]> {
  const { data, specs } = await tf.io.encodeWeights(tensors);
  const buffer = Array.isArray(data) ? tf.io.CompositeArrayBuffer.join(data) : data;
  await writeFileAtomic(join(dir, file), new Uint8Array(buffer));
  return specs;
}

async function readWeights(dir: string, file: string, specs: tf.io.WeightsManifestEntry[]): Promise<tf.NamedTensorMap> {
  const bytes = await readFile(join(dir, file));
  return tf.io.decodeWeights(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength), specs);
}

export async function saveCheckpoint(
  root: string,
  state: Omit<CheckpointState, 'format' | 'createdAt'>,
  model: tf.LayersModel,
  optimizer: tf.Optimizer,
): Promise<void> {
  const name = `epoch-${String(state.epoch).padStart(4, '0')}`;
  const dir = join(root, name);
  await mkdir(dir, { recursive: true });
  const modelSpecs = await writeWeights(dir, 'model.bin', model.weights.map((w) => ({ name: w.originalName, tensor: w.read() })));
  const optimizerTensors = await optimizer.getWeights();
  const optimizerSpecs = await writeWeights(dir, 'optimizer.bin', optimizerTensors);
  // getWeights makes a new scalar for the iteration count each call (the rest are the optimizer's own variables).
  tf.dispose(optimizerTensors.filter((w) => w.name === 'iter').map((w) => w.tensor));
  const full: CheckpointState = { format: 'digits-checkpoint/1', createdAt: new Date().toISOString(), ...state };
  await writeFileAtomic(join(dir, 'state.json'), JSON.stringify({ ...full, modelSpecs, optimizerSpecs }, null, 2));
  await writeFileAtomic(join(root, POINTER), JSON.stringify({ checkpoint: name }));
  // Older checkpoints are superseded; keep only the newest.
  for (const entry of await readdir(root)) {
    if (entry.startsWith('epoch-') && entry !== name) await rm(join(root, entry), { recursive: true, force: true });
  }
}

/** The newest complete checkpoint under root, or undefined when there is none. */
export async function loadCheckpoint(root: string): Promise<Checkpoint | undefined> {
  let pointer: { checkpoint: string };
  try {
    pointer = JSON.parse(await readFile(join(root, POINTER), 'utf8')) as { checkpoint: string };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new CheckpointError(`cannot read ${join(root, POINTER)}: ${(error as Error).message}`);
  }
  if (!/^epoch-\d{4}$/.test(pointer.checkpoint)) throw new CheckpointError(`${join(root, POINTER)} names an invalid checkpoint`);
  const dir = join(root, pointer.checkpoint);
  try {
    const raw = JSON.parse(await readFile(join(dir, 'state.json'), 'utf8')) as CheckpointState & {
      modelSpecs: tf.io.WeightsManifestEntry[];
      optimizerSpecs: tf.io.WeightsManifestEntry[];
    };
    if (raw.format !== 'digits-checkpoint/1') throw new Error(`unknown format ${String(raw.format)}`);
    const modelWeights = await readWeights(dir, 'model.bin', raw.modelSpecs);
    const optimizerMap = await readWeights(dir, 'optimizer.bin', raw.optimizerSpecs);
    const optimizerWeights = raw.optimizerSpecs.map((spec) => ({ name: spec.name, tensor: optimizerMap[spec.name]! }));
    const { modelSpecs: _m, optimizerSpecs: _o, ...state } = raw;
    return { state, modelWeights, optimizerWeights };
  } catch (error) {
    throw new CheckpointError(`checkpoint ${dir} is unreadable: ${(error as Error).message}`);
  }
}

/** Puts checkpointed weights back into the model's variables (by weight name). */
export function restoreModelWeights(model: tf.LayersModel, weights: tf.NamedTensorMap): void {
  for (const w of model.weights) {
    const value = weights[w.originalName];
    if (!value) throw new CheckpointError(`checkpoint has no weight ${w.originalName}`);
    w.write(value);
  }
}
