// Typed command-line parsing on node:util's parseArgs, with errors that name the flag.
import { parseArgs, type ParseArgsConfig } from 'node:util';

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export function parse<T extends NonNullable<ParseArgsConfig['options']>>(argv: string[], options: T, allowPositionals = false) {
  try {
    return parseArgs({ args: joinNegativeValues(argv, options), allowPositionals, options, strict: true });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

/**
 * `--epochs -1` as `--epochs=-1`: parseArgs calls a value that starts with a dash
 * "ambiguous"; a negative number after a string option is its value, and the flag's
 * own check then says what is allowed.
 */
function joinNegativeValues(argv: string[], options: NonNullable<ParseArgsConfig['options']>): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const next = argv[i + 1];
    if (arg === '--') {
      out.push(...argv.slice(i));
      break;
    }
    const name = arg.startsWith('--') ? arg.slice(2) : undefined;
    if (name && options[name]?.type === 'string' && next !== undefined && /^-(\d|\.\d|Infinity)/.test(next)) {
      out.push(`${arg}=${next}`);
      i++;
    } else {
      out.push(arg);
    }
  }
  return out;
}

/** For commands that take no options: true (after printing `help`) when -h/--help was given. */
export function helpRequested(argv: string[], help: string): boolean {
  const { values } = parse(argv, { help: { type: 'boolean', short: 'h' } });
  if (values.help) process.stdout.write(help);
  return Boolean(values.help);
}
