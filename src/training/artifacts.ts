// The tfjs side of a model's files (model.json + weights.bin, loadable by tf.loadLayersModel
// in a browser): saving and loading a directory, and a layers model from a version's bytes.
// Pure tfjs has no file:// handler, so this is one. Reading and checking the files is
// src/model/artifacts.ts's (no tfjs there, for the processes that never load a model).
import * as tf from '@tensorflow/tfjs';
import { join } from 'node:path';
import { writeFileAtomic } from '../lib/atomic-write.ts';
import { MODEL_JSON, ModelArtifactsError, WEIGHTS_BIN, readModelDir, weightSpecsOf, type ModelJson } from '../model/artifacts.ts';

function toArrayBuffer(data: tf.io.WeightData): ArrayBuffer {
  return Array.isArray(data) ? tf.io.CompositeArrayBuffer.join(data) : data;
}

/** A Buffer's bytes as the ArrayBuffer tfjs wants (a copy: a Buffer may be a view into a shared pool). */
function arrayBufferOf(bytes: Buffer): ArrayBuffer {
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
}

/** What tfjs loads from a checked model.json and its weights. */
function modelArtifacts(modelJson: ModelJson, weights: Buffer): tf.io.ModelArtifacts {
  return {
    modelTopology: modelJson.modelTopology,
    weightSpecs: weightSpecsOf(modelJson) as tf.io.WeightsManifestEntry[],
    weightData: arrayBufferOf(weights),
    ...(modelJson.format ? { format: modelJson.format } : {}),
  };
}

/** An IOHandler reading and writing `dir/model.json` + `dir/weights.bin`. */
export function fileHandler(dir: string): tf.io.IOHandler {
  return {
    async save(artifacts: tf.io.ModelArtifacts): Promise<tf.io.SaveResult> {
      if (artifacts.modelTopology instanceof ArrayBuffer) {
        throw new ModelArtifactsError(dir, 'binary model topologies are not supported; save a layers model');
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
      const { modelJson, weights } = await readModelDir(dir);
      return modelArtifacts(modelJson, weights);
    },
  };
}

/** A layers model from a checked model.json and its weights (e.g. a registry version's bytes; the caller disposes it). */
export function layersModelFrom(modelJson: ModelJson, weights: Buffer): Promise<tf.LayersModel> {
  return tf.loadLayersModel(tf.io.fromMemory(modelArtifacts(modelJson, weights)));
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
