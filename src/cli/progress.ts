// A one-line progress bar on stderr (batches, ETA, running loss), redrawn in place on a TTY.
import type { BatchProgress, EpochMetrics } from '../training/types.ts';

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '--:--';
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const mm = String(Math.floor((s % 3600) / 60)).padStart(2, '0');
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

export function progressLine(p: BatchProgress, width = 30): string {
  const filled = Math.round((p.batch / p.batches) * width);
  const bar = '█'.repeat(filled) + '░'.repeat(width - filled);
  return `epoch ${p.epoch}/${p.epochs} ${bar} ${p.batch}/${p.batches} loss=${p.runningLoss.toFixed(4)} ETA ${formatDuration(p.etaSeconds)}`;
}

/** Like the seed's log: "Epoch 1: train loss 0.2104 acc 94.12% | test loss 0.0563 acc 98.25% | 25.3 s (2371 img/s, wasm)". */
export function epochLine(m: EpochMetrics): string {
  const pct = (x: number) => `${(x * 100).toFixed(2)}%`;
  return (
    `Epoch ${m.epoch}: train loss ${m.trainLoss.toFixed(4)} acc ${pct(m.trainAccuracy)} | ` +
    `test loss ${m.testLoss.toFixed(4)} acc ${pct(m.testAccuracy)} | ${m.seconds.toFixed(1)} s (${Math.round(m.imagesPerSecond)} img/s, ${m.engine})`
  );
}

export class ProgressBar {
  private lastDraw = 0;
  private readonly stream: NodeJS.WriteStream;
  constructor(stream: NodeJS.WriteStream = process.stderr) {
    this.stream = stream;
  }

  update(p: BatchProgress): void {
    const now = Date.now();
    if (!this.stream.isTTY || (now - this.lastDraw < 100 && p.batch !== p.batches)) return;
    this.lastDraw = now;
    this.stream.write(`\r\x1b[2K${progressLine(p)}`);
  }

  clear(): void {
    if (this.stream.isTTY) this.stream.write('\r\x1b[2K');
  }
}
