import * as tf from '@tensorflow/tfjs';
import { buildSeedNet, formatSummary, summarize } from '../../model/seed-net.ts';
import { parse } from '../args.ts';

export async function run(argv: string[]): Promise<number> {
  const { values } = parse(argv, { json: { type: 'boolean' } });
  // Building the graph needs no fast kernels: the cpu backend starts instantly.
  await tf.setBackend('cpu');
  const model = buildSeedNet();
  const summary = summarize(model);
  process.stdout.write(values.json ? `${JSON.stringify(summary, null, 2)}\n` : `${formatSummary(summary)}\n`);
  model.dispose();
  return 0;
}
