// A model's signature: what it takes and what it gives, stated once for every
// protocol that describes models (v1 model metadata, Open Inference Protocol
// metadata, the ONNX export's tensor names). Callers get it from a model's
// data set and normalisation, never from how models are stored.
import { CLASS_NAMES, type DatasetName } from '../data/types.ts';
import { IMAGE_SIDE, NUM_CLASSES } from '../model/spec.ts';

/** Tensor names, shared by v2 metadata, v2 inference and the ONNX graph. */
export const INPUT_NAME = 'image';
export const PROBABILITIES_NAME = 'probabilities';
export const LABEL_NAME = 'label';

export interface TensorSignature {
  name: string;
  /** Open Inference Protocol data type names (FP32, UINT8, INT64). */
  datatype: string;
  /** -1 marks the batch dimension, which may be any size. */
  shape: number[];
}

export interface InputSignature extends TensorSignature {
  /** What the dimensions mean; NCHW [N,1,28,28] is accepted too. */
  layout: 'NHWC';
  acceptedLayouts: ['NHWC', 'NCHW'];
  /** FP32 pixel values as declared; UINT8 sent as is. */
  acceptedDatatypes: ['FP32', 'UINT8'];
  /** Raw pixel values the service expects: 0 = background, 255 = full ink. */
  valueRange: [0, 255];
  /** MNIST form: a white (255) digit on a black (0) background, centred by centre of mass in 28×28. */
  polarity: 'white-on-black';
  /** What the model computes from a pixel value x before its first layer: (x / 255 − mean) / std. */
  normalization: { mean: number; std: number; formula: string };
}

export interface ModelSignature {
  inputs: [InputSignature];
  /** Softmax probabilities [N,10], then the arg-max label [N]. */
  outputs: [TensorSignature, TensorSignature];
  /** Class names, index = label (digits for MNIST, garment names for Fashion-MNIST). */
  classLabels: string[];
  dataset: DatasetName;
}

export interface SignatureSource {
  dataset: DatasetName;
  normalization: { mean: number; std: number };
}

export function signatureOf(model: SignatureSource): ModelSignature {
  const { mean, std } = model.normalization;
  return {
    inputs: [
      {
        name: INPUT_NAME,
        datatype: 'FP32',
        shape: [-1, IMAGE_SIDE, IMAGE_SIDE, 1],
        layout: 'NHWC',
        acceptedLayouts: ['NHWC', 'NCHW'],
        acceptedDatatypes: ['FP32', 'UINT8'],
        valueRange: [0, 255],
        polarity: 'white-on-black',
        normalization: { mean, std, formula: '(x / 255 - mean) / std' },
      },
    ],
    outputs: [
      { name: PROBABILITIES_NAME, datatype: 'FP32', shape: [-1, NUM_CLASSES] },
      { name: LABEL_NAME, datatype: 'INT64', shape: [-1] },
    ],
    classLabels: [...CLASS_NAMES[model.dataset]],
    dataset: model.dataset,
  };
}
