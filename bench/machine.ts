// What a benchmark result records about where it ran: the machine, and the load average at
// the time (this 2-core machine is shared, so the load says how far a number can be trusted).
import { cpus, loadavg, totalmem } from 'node:os';

export function machineInfo() {
  return { cpus: cpus().length, cpuModel: cpus()[0]?.model, memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version };
}

/** The 1-, 5- and 15-minute load averages, to two decimals. */
export function loadAverage(): number[] {
  return loadavg().map((l) => Math.round(l * 100) / 100);
}
