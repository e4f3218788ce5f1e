// Learning-rate schedules as pure functions of the global step, so the schedule's whole
// state is the step (epochs done × batches per epoch + batch), which the checkpoint holds:
// a resumed run sets exactly the rates an uninterrupted one would.
import type { Recipe } from './types.ts';

/**
 * One-cycle (Smith & Topin 2018, "Super-convergence"; PyTorch's OneCycleLR with
 * anneal_strategy='cos'): cosine warm-up from peak/25 to the peak over the first 20 % of
 * the steps, then cosine annealing to peak/25e4. Stretched over however many steps the
 * run has, so a 2-epoch run anneals fully too.
 */
export const ONE_CYCLE = Object.freeze({ warmupFraction: 0.2, divFactor: 25, finalDivFactor: 1e4 });

const cosine = (from: number, to: number, t: number) => to + ((from - to) * (1 + Math.cos(Math.PI * t))) / 2;

/** The learning rate for step `step` (0-based) of `totalSteps`. */
export function learningRateAt(recipe: Pick<Recipe, 'schedule' | 'learningRate'>, step: number, totalSteps: number): number {
  if (recipe.schedule === 'constant') return recipe.learningRate;
  const peak = recipe.learningRate;
  const initial = peak / ONE_CYCLE.divFactor;
  const final = initial / ONE_CYCLE.finalDivFactor;
  const warmupSteps = Math.max(1, Math.round(ONE_CYCLE.warmupFraction * totalSteps));
  if (step < warmupSteps) return cosine(initial, peak, step / warmupSteps);
  const rest = Math.max(1, totalSteps - 1 - warmupSteps);
  return cosine(peak, final, Math.min(1, (step - warmupSteps) / rest));
}
