import { describe, expect, it } from 'vitest';
import { LOSS_CURVE_MAX_POINTS, LossCurveBuilder } from '../src/queue/loss-curve.ts';

describe('a job loss curve', () => {
  it('keeps every batch while it fits', () => {
    const curve = new LossCurveBuilder();
    for (let batch = 1; batch <= 10; batch++) curve.add(batch / 10, 1 / batch);
    expect(curve.snapshot()).toEqual({ batchesPerPoint: 1, points: Array.from({ length: 10 }, (_, i) => [(i + 1) / 10, Math.round(1e4 / (i + 1)) / 1e4]) });
  });

  it('stays bounded on a long run, each point the mean of its batches', () => {
    const curve = new LossCurveBuilder();
    const batches = 19 * 469; // the seed recipe on all of MNIST
    for (let step = 1; step <= batches; step++) curve.add(step / 469, step % 2); // losses 1, 0, 1, 0, …
    const { batchesPerPoint, points } = curve.snapshot();
    expect(points.length).toBeLessThanOrEqual(LOSS_CURVE_MAX_POINTS);
    expect(points.length).toBeGreaterThan(LOSS_CURVE_MAX_POINTS / 2 - 1);
    expect(batchesPerPoint).toBe(64);
    for (const [, loss] of points) expect(loss).toBe(0.5);
    // In order, ending at the last whole point.
    const xs = points.map(([x]) => x);
    expect(xs).toEqual([...xs].sort((a, b) => a - b));
    expect(xs.at(-1)).toBeCloseTo((Math.floor(batches / 64) * 64) / 469, 4);
  });

  it('drops what a resumed attempt trains again, and skips non-finite losses', () => {
    const curve = new LossCurveBuilder({ batchesPerPoint: 1, points: [[0.5, 2], [1, 1.5], [1.5, 1.2], [2, 1]] });
    curve.dropAfter(1);
    curve.add(1.5, Number.NaN);
    curve.add(1.5, 1.1);
    expect(curve.snapshot().points).toEqual([[0.5, 2], [1, 1.5], [1.5, 1.1]]);
  });
});
