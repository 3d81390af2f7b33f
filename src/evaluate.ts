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

export interface EvalReport {
  /** As the training line's Valid Loss and Valid Acc: means of per-batch means, so the numbers match. */
  loss: number;
  accuracy: number;
  correct: number;
  /** correct / images: differs from `accuracy` when the last batch is smaller than the others. */
  fractionCorrect: number;
  images: number;
  classNames: string[];
  perClass: { name: string; count: number; correct: number; accuracy: number }[];
  confusion: number[][]; // [true class][predicted class]
}

/** Everything `alexnet eval` reports for a model on a split, evaluated by the backend's runner. */
export async function evaluateReport(split: Split, batchSize: number, classNames: string[], runner: Runner): Promise<EvalReport> {
  const r = await runner.evaluate(split, batchSize);
  const confusion = confusionMatrix(split.labels, r.predictions, classNames.length);
  const perClass = perClassAccuracy(confusion).map((c, i) => ({ name: classNames[i] ?? String(i), ...c }));
  return {
    loss: r.loss,
    accuracy: r.acc,
    correct: perClass.reduce((n, c) => n + c.correct, 0),
    fractionCorrect: perClass.reduce((n, c) => n + c.correct, 0) / split.count,
    images: split.count,
    classNames,
    perClass,
    confusion,
  };
}
