// What goes to stdout: the seed's epoch line (pipelines parse it), JSON records, and the summary table.
// Pure formatting; the commands write the strings.

import type { ModelSummary } from './model.js';
import type { EpochMetrics } from './train.js';

/** Whole seconds as HH:MM:SS, truncated as the seed's `(cur_time - prev_time).seconds` is. */
export function hhmmss(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  const two = (n: number) => String(n).padStart(2, '0');
  return `${two(Math.floor(s / 3600))}:${two(Math.floor((s % 3600) / 60))}:${two(s % 60)}`;
}

/** `Epoch 0. Train Loss: 1.705926, Train Acc: 0.374520, Valid Loss: 1.530230, Valid Acc: 0.450257, Time 00:00:12` */
export function epochLine(m: EpochMetrics): string {
  const f = (x: number) => x.toFixed(6);
  return `Epoch ${m.epoch}. Train Loss: ${f(m.trainLoss)}, Train Acc: ${f(m.trainAcc)}, Valid Loss: ${f(m.validLoss)}, Valid Acc: ${f(m.validAcc)}, Time ${hhmmss(m.seconds)}`;
}

export function epochJson(m: EpochMetrics): string {
  return JSON.stringify({ type: 'epoch', ...m });
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
