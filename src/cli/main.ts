// `digits <command> [options]`: each command lives in src/cli/commands/<command>.ts
// and exports `run(argv): Promise<number>` (the exit code).
import { sizeHeapsForMemory } from '../api/process-tuning.ts';

const COMMANDS: Record<string, string> = {
  train: 'Train the seed CNN (see `digits train --help`)',
  evaluate: 'Evaluate a saved model on the test split',
  summary: 'Print the model summary (layers, output shapes, parameters)',
  export: 'Write a model directory as another format (`digits export --format onnx --model DIR`)',
  predict: 'Classify image files with a running service or a model directory',
  serve: 'Run the HTTP API',
  worker: 'Run a training worker (BullMQ, concurrency 1)',
  up: 'Run API + one worker (+ a private redis-server when REDIS_URL is unset)',
  health: "Exit 0 when this host's worker is alive (Redis answers, heartbeat fresh); for health checks",
};

function usage(): string {
  const lines = Object.entries(COMMANDS).map(([name, text]) => `  ${name.padEnd(10)} ${text}`);
  return `Usage: digits <command> [options]\n\nCommands:\n${lines.join('\n')}\n`;
}

const [command, ...argv] = process.argv.slice(2);
if (!command || command === '--help' || command === '-h' || command === 'help') {
  process.stdout.write(usage());
  process.exitCode = command ? 0 : 1;
} else if (!(command in COMMANDS)) {
  process.stderr.write(`digits: unknown command "${command}"\n\n${usage()}`);
  process.exitCode = 2;
} else {
  // The API process (alone, or beside `up`'s worker child): before its modules load (process-tuning.ts says why).
  if (command === 'serve' || command === 'up') sizeHeapsForMemory();
  const module = (await import(`./commands/${command}.ts`)) as { run(argv: string[]): Promise<number> };
  try {
    process.exitCode = await module.run(argv);
  } catch (error) {
    // Typed errors carry a message meant for people; print it without a stack trace.
    const err = error as Error;
    process.stderr.write(`digits ${command}: ${err.message}\n`);
    // DEBUG is read here, not through lib/config.ts: this is the error path, and a bad variable may be the error.
    if (process.env.DEBUG) process.stderr.write(`${err.stack}\n`);
    process.exitCode = 1;
  }
  // The threaded wasm engine's pthread workers can keep the process alive after the
  // command is done; give pending output a moment, then exit.
  setTimeout(() => process.exit(), 500).unref();
}
