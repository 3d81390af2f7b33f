// Evaluation and its metrics: the confusion matrix, per-class accuracy, and what `alexnet eval` reports. The
// backend's runner computes the loss, accuracy and predictions (src/backends/); this module only counts.

import type { EvalResult, Runner } from './backends/index.js';
import { CHANNELS, IMAGE_SIZE, type Split } from './data/cifar.js';
import type { Tta } from './recipe.js';

/** counts[t][p]: how many records of true class t were predicted as p. */
export function confusionMatrix(labels: ArrayLike<number>, predictions: ArrayLike<number>, classes: number): number[][] {
  if (labels.length !== predictions.length) throw new RangeError(`${labels.length} labels but ${predictions.length} predictions`);
  const counts = Array.from({ length: classes }, () => new Array<number>(classes).fill(0));
  for (let i = 0; i < labels.length; i++) counts[labels[i]!]![predictions[i]!]!++;
  return counts;
}

/** Per true class: records, correct ones, and their ratio (NaN for a class with no records). */
export function perClassAccuracy(confusion: number[][]): { count: number; correct: number; accuracy: number }[] {
  return confusion.map((row, t) => {
    const count = row.reduce((a, b) => a + b, 0);
    const correct = row[t]!;
    return { count, correct, accuracy: count === 0 ? NaN : correct / count };
  });
}

/**
 * Per predicted class: its precision (the right share of the records predicted as it), and its F1 with the class's
 * accuracy (its recall), as scikit-learn's classification_report gives them; NaN where a ratio has no records.
 */
export function perClassPrecision(confusion: number[][]): { predicted: number; precision: number; f1: number }[] {
  return confusion.map((row, c) => {
    const predicted = confusion.reduce((n, r) => n + r[c]!, 0);
    const count = row.reduce((a, b) => a + b, 0);
    const precision = predicted === 0 ? NaN : row[c]! / predicted;
    const recall = count === 0 ? NaN : row[c]! / count;
    const f1 = Number.isNaN(precision) || Number.isNaN(recall) ? NaN : precision + recall === 0 ? 0 : (2 * precision * recall) / (precision + recall);
    return { predicted, precision, f1 };
  });
}

/** The records whose label ranks under `k` (labelRank: 0 is a top-1 hit), and their fraction. */
export function topK(ranks: ArrayLike<number>, k: number): { correct: number; fraction: number } {
  let correct = 0;
  for (let i = 0; i < ranks.length; i++) if (ranks[i]! < k) correct++;
  return { correct, fraction: ranks.length === 0 ? NaN : correct / ranks.length };
}

export interface EvalReport {
  /** As the training line's Valid Loss and Valid Acc: means of per-batch means, so the numbers match. */
  loss: number;
  accuracy: number;
  correct: number;
  /** correct / images: differs from `accuracy` when the last batch is smaller than the others. */
  fractionCorrect: number;
  /** Images whose label is among the 5 largest logits, and their fraction; null for 5 classes or fewer. */
  top5: { correct: number; fraction: number } | null;
  images: number;
  classNames: string[];
  /** `accuracy` is the class's recall; `predicted`: the records predicted as it. */
  perClass: { name: string; count: number; correct: number; accuracy: number; predicted: number; precision: number; f1: number }[];
  confusion: number[][]; // [true class][predicted class]
}

/** `split` with every image mirrored left to right (HWC rows reversed pixel by pixel). */
export function mirrored(split: Split): Split {
  const images = new Uint8Array(split.images.length);
  const row = IMAGE_SIZE * CHANNELS;
  for (let r = 0; r < split.count * IMAGE_SIZE; r++) {
    for (let x = 0; x < IMAGE_SIZE; x++) {
      for (let c = 0; c < CHANNELS; c++) images[r * row + x * CHANNELS + c] = split.images[r * row + (IMAGE_SIZE - 1 - x) * CHANNELS + c]!;
    }
  }
  return { images, labels: split.labels, count: split.count };
}

/**
 * What a runner's evaluation gives, from logits [records, classes] and labels: the loss (with label smoothing
 * `smoothing`, as training's) and accuracy as means of per-batch means over batches of `batchSize`, the first
 * maximum of each row and the label's rank, computed in float64 here (a runner sums in float32 on its device).
 */
export function fromLogits(logits: Float32Array, labels: ArrayLike<number>, classes: number, batchSize: number, smoothing = 0): EvalResult {
  const n = labels.length;
  const predictions = new Uint16Array(n);
  const ranks = new Uint16Array(n);
  let lossSum = 0;
  let accSum = 0;
  for (let start = 0; start < n; start += batchSize) {
    const end = Math.min(n, start + batchSize);
    let loss = 0;
    let hits = 0;
    for (let i = start; i < end; i++) {
      const z = logits.subarray(i * classes, (i + 1) * classes);
      const y = labels[i]!;
      let best = 0;
      let max = z[0]!;
      let sum = 0;
      let rank = 0;
      for (let c = 0; c < classes; c++) {
        if (z[c]! > max) [best, max] = [c, z[c]!];
        sum += z[c]!;
        if (z[c]! > z[y]! || (z[c] === z[y] && c < y)) rank++;
      }
      let exps = 0;
      for (let c = 0; c < classes; c++) exps += Math.exp(z[c]! - max);
      const lse = max + Math.log(exps);
      loss += lse - (1 - smoothing) * z[y]! - (smoothing * sum) / classes;
      hits += best === y ? 1 : 0;
      predictions[i] = best;
      ranks[i] = rank;
    }
    lossSum += loss / (end - start);
    accSum += hits / (end - start);
  }
  const batches = Math.ceil(n / batchSize);
  return { loss: lossSum / batches, acc: accSum / batches, predictions, ranks, logits };
}

/**
 * The runner's evaluation of `split`, or with `tta` 'flip' test-time augmentation: the logits of each image and of
 * its mirror averaged (as airbench and timm's flip TTA do), then scored on the host.
 */
export async function evaluateSplit(runner: Runner, split: Split, batchSize: number, opts: { tta: Tta; smoothing: number; classes: number; onBatch?: (done: number, batches: number) => void }): Promise<EvalResult> {
  if (opts.tta === 'none') return runner.evaluate(split, batchSize, opts.onBatch);
  const batches = Math.ceil(split.count / batchSize);
  const a = await runner.evaluate(split, batchSize, (b) => opts.onBatch?.(b, 2 * batches));
  const b = await runner.evaluate(mirrored(split), batchSize, (b) => opts.onBatch?.(batches + b, 2 * batches));
  const mean = a.logits.map((v, i) => (v + b.logits[i]!) / 2);
  return fromLogits(mean, split.labels, opts.classes, batchSize, opts.smoothing);
}

/** Everything `alexnet eval` reports for a model on a split, evaluated by the backend's runner (with `tta`, on mirrors too). */
export async function evaluateReport(split: Split, batchSize: number, classNames: string[], runner: Runner, opts: { tta: Tta; smoothing: number } = { tta: 'none', smoothing: 0 }): Promise<EvalReport> {
  const r = await evaluateSplit(runner, split, batchSize, { ...opts, classes: classNames.length });
  const confusion = confusionMatrix(split.labels, r.predictions, classNames.length);
  const precision = perClassPrecision(confusion);
  const perClass = perClassAccuracy(confusion).map((c, i) => ({ name: classNames[i] ?? String(i), ...c, ...precision[i]! }));
  return {
    loss: r.loss,
    accuracy: r.acc,
    correct: perClass.reduce((n, c) => n + c.correct, 0),
    fractionCorrect: perClass.reduce((n, c) => n + c.correct, 0) / split.count,
    top5: classNames.length > 5 ? topK(r.ranks, 5) : null,
    images: split.count,
    classNames,
    perClass,
    confusion,
  };
}
