import * as tf from '@tensorflow/tfjs';
import { buildSeedNet, formatSummary, summarize } from '../../model/seed-net.ts';
import { ARCHITECTURE_NAMES, type ArchitectureName } from '../../model/spec.ts';
import { parse, UsageError } from '../args.ts';

export const HELP = `Usage: digits summary [--architecture seed|compact] [--json]

Prints the model's layers, output shapes and parameter counts (builds it; no weights needed).

  --architecture seed|compact  the 14,320-parameter seed net (default) or the compact one
  --json                       the summary as JSON
`;

export async function run(argv: string[]): Promise<number> {
  const { values } = parse(argv, { json: { type: 'boolean' }, architecture: { type: 'string' }, help: { type: 'boolean', short: 'h' } });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const architecture = (values.architecture ?? 'seed') as ArchitectureName;
  if (!ARCHITECTURE_NAMES.includes(architecture)) {
    throw new UsageError(`--architecture must be one of ${ARCHITECTURE_NAMES.join(', ')}, got "${values.architecture}"`);
  }
  // Building the graph needs no fast kernels: the cpu backend starts instantly.
  await tf.setBackend('cpu');
  const model = buildSeedNet(1, architecture);
  const summary = summarize(model);
  process.stdout.write(values.json ? `${JSON.stringify(summary, null, 2)}\n` : `${formatSummary(summary)}\n`);
  model.dispose();
  return 0;
}
