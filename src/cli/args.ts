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
    return parseArgs({ args: argv, options, allowPositionals, strict: true });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

/** For commands that take no options: true (after printing `help`) when -h/--help was given. */
export function helpRequested(argv: string[], help: string): boolean {
  const { values } = parse(argv, { help: { type: 'boolean', short: 'h' } });
  if (values.help) process.stdout.write(help);
  return Boolean(values.help);
}
