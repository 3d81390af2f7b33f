// The learning rate of each training step, as PyTorch's schedulers give it when stepped once a batch (issue #21).
// A closed form of the step's number alone, so that a resumed run takes exactly the rates of one that was never
// interrupted. Each schedule is the PyTorch 1.13 construction below, T = epochs x batches a step, W = warm-up
// epochs x batches, M = T - W; scripts/torch_reference.py records PyTorch's own rates and test/optim.test.ts
// holds these to them:
// - constant: lr, after LinearLR(start_factor=1/W, total_iters=W) when W > 0;
// - step: MultiStepLR(milestones=[M/2, 3M/4] (floored), gamma=0.1), after the warm-up through SequentialLR;
// - cosine: CosineAnnealingLR(T_max=M, eta_min=0), after the warm-up through SequentialLR;
// - onecycle: OneCycleLR(max_lr=lr, total_steps=T, pct_start=W/T or 0.3 without a warm-up, div_factor=25,
//   final_div_factor=1e4, anneal_strategy='cos', cycle_momentum=False): the warm-up is its rising part.

import type { Recipe } from './recipe.js';

export type ScheduleRecipe = Pick<Recipe, 'lr' | 'schedule' | 'warmupEpochs' | 'epochs'>;

/** OneCycleLR's defaults that this tool keeps. */
const ONECYCLE = { pctStart: 0.3, divFactor: 25, finalDivFactor: 1e4 };

/** The learning rate of step `step` (from 0) of a run of `r.epochs` epochs of `batches` steps each. */
export function lrAt(r: ScheduleRecipe, batches: number, step: number): number {
  const total = r.epochs * batches;
  const warm = r.warmupEpochs * batches;
  if (r.schedule === 'onecycle') return oneCycle(r.lr, total, warm > 0 ? warm / total : ONECYCLE.pctStart, step);
  if (step < warm) return r.lr * (1 / warm + (1 - 1 / warm) * (step / warm)); // LinearLR, stepped `step` times
  const s = step - warm;
  const m = total - warm;
  switch (r.schedule) {
    case 'constant':
      return r.lr;
    case 'step':
      return r.lr * 0.1 ** [Math.floor(m / 2), Math.floor((3 * m) / 4)].filter((milestone) => milestone <= s).length;
    case 'cosine':
      return (r.lr * (1 + Math.cos((Math.PI * Math.min(s, m)) / m))) / 2;
  }
}

/** OneCycleLR's rate at `step` (two phases, cosine annealing), as PyTorch 1.13 computes it. */
function oneCycle(maxLr: number, total: number, pctStart: number, step: number): number {
  const initial = maxLr / ONECYCLE.divFactor;
  const min = initial / ONECYCLE.finalDivFactor;
  const phases = [
    { end: pctStart * total - 1, from: initial, to: maxLr },
    { end: total - 1, from: maxLr, to: min },
  ];
  let start = 0;
  for (const [i, p] of phases.entries()) {
    if (step <= p.end || i === phases.length - 1) {
      const pct = (step - start) / (p.end - start);
      return p.to + ((p.from - p.to) / 2) * (1 + Math.cos(Math.PI * pct));
    }
    start = p.end;
  }
  throw new Error('unreachable');
}

/**
 * Why the schedule cannot run over `batches` steps an epoch, or null: a onecycle phase of no steps divides by zero
 * (PyTorch's OneCycleLR raises ZeroDivisionError there; here it read as a diverged run: issue #24).
 */
export function scheduleProblem(r: ScheduleRecipe, batches: number): string | null {
  if (r.schedule !== 'onecycle') return null;
  const total = r.epochs * batches;
  const rising = (r.warmupEpochs > 0 ? r.warmupEpochs * batches : ONECYCLE.pctStart * total) - 1;
  if (rising === 0 || total - 1 - rising === 0) {
    return `--schedule onecycle over ${total} step${total === 1 ? '' : 's'} (${batches} batch${batches === 1 ? '' : 'es'} an epoch) leaves its ${rising === 0 ? 'rising' : 'falling'} phase no steps`;
  }
  return null;
}
