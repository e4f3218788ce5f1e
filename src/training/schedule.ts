// Learning-rate schedules as pure functions of the global step, so the schedule's whole
// state is the step (epochs done × batches per epoch + batch), which the checkpoint holds:
// a resumed run sets exactly the rates an uninterrupted one would.
import type { Recipe } from './types.ts';

/**
 * One-cycle (Smith & Topin 2018, "Super-convergence"; PyTorch's OneCycleLR with
 * anneal_strategy='cos'): cosine warm-up from peak/25 to the peak over the first 20 % of
 * the steps, then cosine annealing to peak/25e4. Stretched over however many steps the
 * run has, so a 2-epoch run anneals fully too. Short runs warm up for at least one epoch
 * (or half the run, if shorter): jumping to the peak within 0.4 epochs cost a 2-epoch run
 * a point of accuracy (97.92 % against 99.23 % for the 12-epoch run after its epoch 2),
 * as gradual warm-up (Goyal et al. 2017) predicts. Runs of 5 epochs or more are unaffected.
 */
export const ONE_CYCLE = Object.freeze({ warmupFraction: 0.2, minWarmupEpochs: 1, divFactor: 25, finalDivFactor: 1e4 });

const cosine = (from: number, to: number, t: number) => to + ((from - to) * (1 + Math.cos(Math.PI * t))) / 2;

/** The number of warm-up steps of a one-cycle run. */
export function warmupSteps(totalSteps: number, stepsPerEpoch: number): number {
  const fraction = Math.round(ONE_CYCLE.warmupFraction * totalSteps);
  const floor = Math.min(Math.round(totalSteps / 2), ONE_CYCLE.minWarmupEpochs * stepsPerEpoch);
  return Math.max(1, fraction, floor);
}

/** The learning rate for step `step` (0-based) of `totalSteps` (`stepsPerEpoch` per epoch). */
export function learningRateAt(
  recipe: Pick<Recipe, 'schedule' | 'learningRate'>,
  step: number,
  totalSteps: number,
  stepsPerEpoch: number,
): number {
  if (recipe.schedule === 'constant') return recipe.learningRate;
  const peak = recipe.learningRate;
  const initial = peak / ONE_CYCLE.divFactor;
  const final = initial / ONE_CYCLE.finalDivFactor;
  const warmup = warmupSteps(totalSteps, stepsPerEpoch);
  if (step < warmup) return cosine(initial, peak, step / warmup);
  const rest = Math.max(1, totalSteps - 1 - warmup);
  return cosine(peak, final, Math.min(1, (step - warmup) / rest));
}
