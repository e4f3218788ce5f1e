// Model artifacts in tfjs's own format (model.json + weights.bin, loadable by
// tf.loadLayersModel in a browser). Pure tfjs has no file:// handler, so this is one.
import * as tf from '@tensorflow/tfjs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../lib/atomic-write.ts';

export const MODEL_JSON = 'model.json';
export const WEIGHTS_BIN = 'weights.bin';
export const METADATA_JSON = 'metadata.json';

export class ModelArtifactsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ModelArtifactsError';
  }
}

function toArrayBuffer(data: tf.io.WeightData): ArrayBuffer {
  return Array.isArray(data) ? tf.io.CompositeArrayBuffer.join(data) : data;
}

/** An IOHandler reading and writing `dir/model.json` + `dir/weights.bin`. */
export function fileHandler(dir: string): tf.io.IOHandler {
  return {
    async save(artifacts: tf.io.ModelArtifacts): Promise<tf.io.SaveResult> {
      if (artifacts.modelTopology instanceof ArrayBuffer) {
        throw new ModelArtifactsError('binary model topologies are not supported; save a layers model');
      }
      const weights = artifacts.weightData ? new Uint8Array(toArrayBuffer(artifacts.weightData)) : new Uint8Array();
      const modelJson: tf.io.ModelJSON = {
        modelTopology: artifacts.modelTopology as object,
        format: artifacts.format ?? 'layers-model',
        generatedBy: artifacts.generatedBy ?? `TensorFlow.js tfjs-layers v${tf.version.tfjs}`,
        convertedBy: artifacts.convertedBy ?? null,
        weightsManifest: [{ paths: [`./${WEIGHTS_BIN}`], weights: artifacts.weightSpecs ?? [] }],
        ...(artifacts.trainingConfig ? { trainingConfig: artifacts.trainingConfig } : {}),
      };
      // Weights first: model.json appearing is what makes the directory loadable.
      await writeFileAtomic(join(dir, WEIGHTS_BIN), weights);
      await writeFileAtomic(join(dir, MODEL_JSON), JSON.stringify(modelJson));
      return {
        modelArtifactsInfo: {
          dateSaved: new Date(),
          modelTopologyType: 'JSON',
          weightDataBytes: weights.byteLength,
        },
      };
    },
    async load(): Promise<tf.io.ModelArtifacts> {
      const jsonPath = join(dir, MODEL_JSON);
      let modelJson: tf.io.ModelJSON;
      try {
        modelJson = JSON.parse(await readFile(jsonPath, 'utf8')) as tf.io.ModelJSON;
      } catch (error) {
        throw new ModelArtifactsError(`cannot read ${jsonPath}: ${(error as Error).message}`);
      }
      const groups = modelJson.weightsManifest ?? [];
      const weightSpecs = groups.flatMap((group) => group.weights);
      const buffers = await Promise.all(
        groups.flatMap((group) => group.paths).map(async (path) => {
          const file = join(dir, path);
          try {
            const bytes = await readFile(file);
            return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
          } catch (error) {
            throw new ModelArtifactsError(`cannot read weights file ${file}: ${(error as Error).message}`);
          }
        }),
      );
      const weightData = tf.io.concatenateArrayBuffers(buffers);
      const expected = weightSpecs.reduce((sum, spec) => sum + spec.shape.reduce((a, b) => a * b, 1) * 4, 0);
      if (weightData.byteLength !== expected) {
        throw new ModelArtifactsError(
          `${join(dir, WEIGHTS_BIN)} has ${weightData.byteLength} bytes, model.json expects ${expected}`,
        );
      }
      return { modelTopology: modelJson.modelTopology, weightSpecs, weightData, format: modelJson.format };
    },
  };
}

/** `file://DIR` (or `file://DIR/model.json`) for model.save / tf.loadLayersModel. */
function fileRouter(url: string | string[]): tf.io.IOHandler {
  // tfjs routers signal "not mine" with null; the IORouter type does not admit it.
  if (Array.isArray(url) || !url.startsWith('file://')) return null as unknown as tf.io.IOHandler;
  const path = url.slice('file://'.length).replace(/\/model\.json$/, '');
  return fileHandler(path);
}

let routersRegistered = false;
export function registerFileRouter(): void {
  // tfjs-node ships its own file:// router; two would make tfjs refuse to choose.
  if (routersRegistered || tf.io.getSaveHandlers('file://probe').length > 0) return;
  tf.io.registerSaveRouter(fileRouter);
  tf.io.registerLoadRouter(fileRouter);
  routersRegistered = true;
}

export async function saveModel(model: tf.LayersModel, dir: string): Promise<void> {
  await model.save(fileHandler(dir));
}

export async function loadModel(dir: string): Promise<tf.LayersModel> {
  registerFileRouter();
  return tf.loadLayersModel(fileHandler(dir));
}
