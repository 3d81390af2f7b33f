// Evaluation and its metrics: the confusion matrix, per-class accuracy, and what `alexnet eval` reports. The
// backend's runner computes the loss, accuracy and predictions (src/backends/); this module only counts.

import type { Runner } from './backends/index.js';
import type { Split } from './data/cifar.js';

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

/** Everything `alexnet eval` reports for a model on a split, evaluated by the backend's runner. */
export async function evaluateReport(split: Split, batchSize: number, classNames: string[], runner: Runner): Promise<EvalReport> {
  const r = await runner.evaluate(split, batchSize);
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
