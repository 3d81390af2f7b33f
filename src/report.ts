// What goes to stdout: the seed's epoch line (pipelines parse it), JSON records, the summary table, and the
// results of `eval` and `predict`.
// Pure formatting; the commands write the strings.

import type { ModelSummary } from './model.js';
import type { ClassScore } from './predict.js';
import { printable } from './data/cifar.js';
import { dataRecord, type DataInfo } from './data/dataset.js';
import type { EvalReport } from './evaluate.js';
import type { EpochMetrics, TestMetrics } from './train.js';

/** Whole seconds as HH:MM:SS, truncated as the seed's `(cur_time - prev_time).seconds` is. */
export function hhmmss(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  const two = (n: number) => String(n).padStart(2, '0');
  return `${two(Math.floor(s / 3600))}:${two(Math.floor((s % 3600) / 60))}:${two(s % 60)}`;
}

/** `Epoch 0. Train Loss: 1.705926, Train Acc: 0.374520, Valid Loss: 1.530230, Valid Acc: 0.450257, Time 00:00:12` */
/** A learning rate in JSON: 6 significant digits, since a schedule's end (8e-8) rounds to 0 at 6 decimals. */
export const lrNumber = (lr: number) => Number(lr.toPrecision(6));

/** A learning rate for people, one way at every size: `1.00e-1`, `7.16e-5`, `8.00e-8`. */
export const lrText = (lr: number) => lr.toExponential(2);

export function epochLine(m: EpochMetrics): string {
  const f = (x: number) => x.toFixed(6);
  return `Epoch ${m.epoch}. Train Loss: ${f(m.trainLoss)}, Train Acc: ${f(m.trainAcc)}, Valid Loss: ${f(m.validLoss)}, Valid Acc: ${f(m.validAcc)}, Time ${hhmmss(m.seconds)}`;
}

export function epochJson(m: EpochMetrics): string {
  return JSON.stringify({ type: 'epoch', epoch: m.epoch, trainLoss: round6(m.trainLoss), trainAcc: round6(m.trainAcc), validLoss: round6(m.validLoss), validAcc: round6(m.validAcc), seconds: round6(m.seconds), imagesPerSecond: round6(m.imagesPerSecond), ...(m.lr !== undefined ? { lr: lrNumber(m.lr) } : {}) });
}

/** After the last epoch of a run with a held-out validation split: `Test Loss: 0.912345, Test Acc: 0.701172`. */
export function testLine(t: TestMetrics): string {
  return `Test Loss: ${t.loss.toFixed(6)}, Test Acc: ${t.acc.toFixed(6)}`;
}

export function testJson(t: TestMetrics): string {
  return JSON.stringify({ type: 'test', loss: round6(t.loss), acc: round6(t.acc) });
}

/** The network as a table, in the spirit of the seed's `print(alexnet)` and its output-shape check. */
export function summaryText(s: ModelSummary): string {
  const rows = s.layers.map((l) => [l.name, l.type, `[${l.outputShape.join(', ')}]`, l.params.toLocaleString('en-US')]);
  const head = ['layer', 'type', 'output shape', 'params'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((c, i) => (i === 3 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return [
    line(head),
    line(widths.map((w) => '-'.repeat(w))),
    ...rows.map(line),
    '',
    `total parameters: ${s.totalParams.toLocaleString('en-US')}`,
    `output of a zero [${s.inputShape.join(', ')}] input: [${s.outputShape.join(', ')}]`,
  ].join('\n');
}

/** The most classes whose confusion matrix `eval` prints as a table (CIFAR-100's 20 superclasses fit a terminal). */
const MAX_MATRIX_CLASSES = 20;

/** `alexnet eval`'s terminal output: totals, per-class accuracy, and the confusion matrix as a table. */
export function evalText(report: EvalReport): string {
  // Class names come from files (batches.meta.txt, state.json): printed without control characters.
  const r = { ...report, classNames: report.classNames.map(printable), perClass: report.perClass.map((c) => ({ ...c, name: printable(c.name) })) };
  const nameW = Math.max(5, ...r.classNames.map((n) => n.length));
  const n = r.images.toLocaleString('en-US');
  const lines = [
    // The seed's figures (means of per-batch means, as the training log's Valid columns), then the plain count.
    `${testLine({ loss: r.loss, acc: r.accuracy })} (means over batches, as the training log's Valid Loss and Valid Acc)`,
    `Correct: ${r.correct.toLocaleString('en-US')} of ${n} images (${r.fractionCorrect.toFixed(6)})`,
    ...(r.top5 ? [`Top-5: ${r.top5.correct.toLocaleString('en-US')} of ${n} images (${r.top5.fraction.toFixed(6)}) with the label among the 5 largest logits`] : []),
    '',
    // accuracy is the class's recall; precision and F1 as scikit-learn's classification_report has them.
    `${'class'.padEnd(nameW)}  ${'correct'.padStart(13)}  accuracy  precision      F1`,
    ...r.perClass.map((c) => `${c.name.padEnd(nameW)}  ${`${c.correct} / ${c.count}`.padStart(13)}  ${ratio(c.accuracy, 8)}  ${ratio(c.precision, 9)}  ${ratio(c.f1, 6)}`),
    '',
    `macro average: precision ${ratio(mean(r.perClass.map((c) => c.precision)), 0)}, recall ${ratio(mean(r.perClass.map((c) => c.accuracy)), 0)}, F1 ${ratio(mean(r.perClass.map((c) => c.f1)), 0)}`,
  ];
  // CIFAR-100's 100 columns would not fit a terminal: the matrix is in --json and the run's report.html.
  if (r.classNames.length > MAX_MATRIX_CLASSES) {
    lines.push('', `confusion matrix: ${r.classNames.length} x ${r.classNames.length}, in \`--json\` (and the run's report.html); shown as a table up to ${MAX_MATRIX_CLASSES} classes`);
    return lines.join('\n');
  }
  lines.push('', 'confusion matrix (rows: true class, columns: predicted class)');
  // Column heads are the names cut to the column width; the rows carry the full names.
  const colW = Math.max(5, ...r.confusion.flat().map((v) => String(v).length));
  lines.push(`${''.padEnd(nameW)} ${r.classNames.map((c) => c.slice(0, colW).padStart(colW)).join(' ')}`);
  r.confusion.forEach((row, t) => lines.push(`${(r.classNames[t] ?? String(t)).padEnd(nameW)} ${row.map((v) => String(v).padStart(colW)).join(' ')}`));
  return lines.join('\n');
}

/** A ratio as the table prints it, right-aligned in `width`, `-` where it has no records (NaN). */
const ratio = (v: number, width: number) => (Number.isNaN(v) ? '-' : v.toFixed(4)).padStart(width);
/** The mean of the values that are numbers (scikit-learn's macro average leaves out none; NaN classes have no records). */
const mean = (vs: number[]) => {
  const ok = vs.filter((v) => !Number.isNaN(v));
  return ok.length === 0 ? NaN : ok.reduce((a, b) => a + b, 0) / ok.length;
};
const jsonRatio = (v: number) => (Number.isNaN(v) ? null : round6(v));

export function evalJson(r: EvalReport, data?: DataInfo): string {
  const perClass = r.perClass.map((c) => ({ ...c, accuracy: jsonRatio(c.accuracy), recall: jsonRatio(c.accuracy), precision: jsonRatio(c.precision), f1: jsonRatio(c.f1) }));
  const macro = { precision: jsonRatio(mean(r.perClass.map((c) => c.precision))), recall: jsonRatio(mean(r.perClass.map((c) => c.accuracy))), f1: jsonRatio(mean(r.perClass.map((c) => c.f1))) };
  return JSON.stringify({ type: 'eval', ...r, loss: round6(r.loss), accuracy: round6(r.accuracy), fractionCorrect: round6(r.fractionCorrect), top5: r.top5 && { correct: r.top5.correct, fraction: round6(r.top5.fraction) }, perClass, macro, data: data && dataRecord(data) });
}

/** JSON numbers as the text lines print them, without float32 noise (0.1600000001490116 -> 0.16). */
export const round6 = (x: number) => Number(x.toFixed(6));

/** `alexnet predict`'s line for one image: `cat.png: cat 0.912, dog 0.051, frog 0.013`. */
export function predictionLine(file: string, top: ClassScore[]): string {
  return `${printable(file)}: ${top.map((s) => `${printable(s.name)} ${s.probability.toFixed(3)}`).join(', ')}`;
}
