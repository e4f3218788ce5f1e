// The per-batch training loss of a job, as a bounded series for its live chart.
// Every point is the mean loss of `batchesPerPoint` consecutive batches; when the
// series reaches LOSS_CURVE_MAX_POINTS, neighbours are merged pairwise and
// batchesPerPoint doubles, so a job of any length keeps at most that many points
// (and its progress record, written to Redis a few times a second, stays small).

/** Most points a job's loss curve keeps (about 4 kB of JSON at the most). */
export const LOSS_CURVE_MAX_POINTS = 256;

/** [x, loss]: x is where training was, in epochs (epoch − 1 + batch / batches); loss the mean batch loss of the point's batches. */
export type LossPoint = [x: number, loss: number];

export interface LossCurve {
  /** Batches averaged into each point (a power of two). */
  batchesPerPoint: number;
  points: LossPoint[];
}

export const emptyLossCurve = (): LossCurve => ({ batchesPerPoint: 1, points: [] });

/** 4 decimals are plenty for a chart and keep the JSON short. */
const round = (value: number) => Math.round(value * 1e4) / 1e4;

export class LossCurveBuilder {
  private readonly curve: LossCurve;
  private pendingSum = 0;
  private pendingCount = 0;
  private readonly maxPoints: number;

  constructor(start: LossCurve = emptyLossCurve(), maxPoints: number = LOSS_CURVE_MAX_POINTS) {
    this.maxPoints = maxPoints;
    this.curve = { batchesPerPoint: start.batchesPerPoint, points: [...start.points] };
  }

  /** Forgets the points after x (a resumed attempt trains those batches again). */
  dropAfter(x: number): void {
    this.curve.points = this.curve.points.filter(([px]) => px <= x);
    this.pendingSum = 0;
    this.pendingCount = 0;
  }

  /** Adds one batch's loss, trained at position x (epochs). */
  add(x: number, loss: number): void {
    // A non-finite loss (divergence) would make the JSON null; the epoch metrics still say so.
    if (!Number.isFinite(loss)) return;
    this.pendingSum += loss;
    this.pendingCount += 1;
    if (this.pendingCount < this.curve.batchesPerPoint) return;
    this.curve.points.push([round(x), round(this.pendingSum / this.pendingCount)]);
    this.pendingSum = 0;
    this.pendingCount = 0;
    if (this.curve.points.length >= this.maxPoints) this.halve();
  }

  /** Merges neighbouring points (each pair's mean, at the later one's x); an odd last point stays. */
  private halve(): void {
    const { points } = this.curve;
    const merged: LossPoint[] = [];
    for (let i = 0; i + 1 < points.length; i += 2) merged.push([points[i + 1]![0], round((points[i]![1] + points[i + 1]![1]) / 2)]);
    if (points.length % 2 === 1) merged.push(points.at(-1)!);
    this.curve.points = merged;
    this.curve.batchesPerPoint *= 2;
  }

  snapshot(): LossCurve {
    return { batchesPerPoint: this.curve.batchesPerPoint, points: this.curve.points.map(([x, loss]) => [x, loss]) };
  }
}
