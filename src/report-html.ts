// The training report that `train --save DIR` keeps in DIR/report.html: loss and accuracy curves per epoch
// and the confusion matrix on the validation (test) split after the last epoch. Vega-Lite specs rendered to
// SVG in Node by Vega's headless view (no browser, no canvas), inlined into one page with no scripts to run
// and nothing to fetch, so it opens from a CI artifact or an air-gapped machine. Pure: state in, HTML out.

import { DEFAULT_CLASS_NAMES } from './data/cifar.js';
import { shownUrl } from './data/download.js';
import { perClassAccuracy } from './evaluate.js';
import { hhmmss, lrText } from './report.js';
import { earlyStopText, stoppedEarly, type EpochMetrics, type TrainState } from './train.js';

export const REPORT_FILE = 'report.html';

export interface ReportMeta {
  /** When the page was written (shown; the caller passes it so that rendering stays pure). */
  generated: Date;
  backend?: string;
}

type Spec = Record<string, unknown>;

const CHART = { width: 360, height: 220 };
const SERIES_COLOURS = { domain: ['train', 'valid'], range: ['#1f77b4', '#ff7f0e'] };

/** Train and valid curves of one metric, one point per epoch. */
export function curveSpec(history: EpochMetrics[], metric: 'Loss' | 'Acc'): Spec {
  const values = history.flatMap((m) => [
    { epoch: m.epoch, split: 'train', value: metric === 'Loss' ? m.trainLoss : m.trainAcc },
    { epoch: m.epoch, split: 'valid', value: metric === 'Loss' ? m.validLoss : m.validAcc },
  ]);
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: metric === 'Loss' ? 'Loss (cross-entropy)' : 'Accuracy',
    ...CHART,
    data: { values },
    mark: { type: 'line', point: true },
    encoding: {
      x: { field: 'epoch', type: 'quantitative', axis: { tickMinStep: 1, format: 'd' }, title: 'epoch' },
      y: {
        field: 'value',
        type: 'quantitative',
        title: metric === 'Loss' ? 'loss' : 'accuracy',
        scale: metric === 'Acc' ? { domain: [0, 1] } : { zero: true },
      },
      color: { field: 'split', type: 'nominal', scale: SERIES_COLOURS, title: null },
    },
  };
}

/** The learning rate of each epoch's last step, on a log scale (a schedule spans 0.1 to 1e-7): what a user checks first. */
export function lrSpec(history: EpochMetrics[]): Spec {
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: 'Learning rate (last step of each epoch)',
    ...CHART,
    data: { values: history.filter((m) => m.lr !== undefined && m.lr > 0).map((m) => ({ epoch: m.epoch, lr: m.lr })) },
    mark: { type: 'line', point: true },
    encoding: {
      x: { field: 'epoch', type: 'quantitative', axis: { tickMinStep: 1, format: 'd' }, title: 'epoch' },
      y: { field: 'lr', type: 'quantitative', title: 'learning rate', scale: { type: 'log' }, axis: { format: '.1e' } },
    },
  };
}

/**
 * A heatmap of counts[true][predicted] with each count written in its cell; above MAX_WRITTEN_CLASSES (CIFAR-100's
 * 100) the cells are small and the counts are in the page's data only: written out, 100 x 100 made a 4.4 MB page.
 */
export function confusionSpec(confusion: number[][], classNames: string[]): Spec {
  const values = confusion.flatMap((row, t) => row.map((count, p) => ({ true: classNames[t] ?? String(t), predicted: classNames[p] ?? String(p), count })));
  const max = Math.max(1, ...values.map((v) => v.count));
  const order = confusion.map((_, i) => classNames[i] ?? String(i));
  const written = order.length <= MAX_WRITTEN_CLASSES;
  const axis = (field: string, title: string) => ({ field, type: 'ordinal', sort: order, title });
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: 'Confusion matrix (validation split, last epoch)',
    width: (written ? 36 : 9) * order.length,
    height: (written ? 36 : 9) * order.length,
    data: { values },
    encoding: { x: axis('predicted', 'predicted class'), y: axis('true', 'true class') },
    layer: [
      { mark: 'rect', encoding: { color: { field: 'count', type: 'quantitative', scale: { scheme: 'blues', domain: [0, max] }, title: 'images' } } },
      ...(written
        ? [{
          mark: { type: 'text', fontSize: 10 },
          encoding: {
            text: { field: 'count', type: 'quantitative' },
            color: { condition: { test: `datum.count > ${max / 2}`, value: 'white' }, value: 'black' },
          },
        }]
        : []),
    ],
  };
}

/** The most classes whose confusion counts are written in the cells. */
const MAX_WRITTEN_CLASSES = 20;

/** Renders a Vega-Lite spec to an SVG string with Vega's headless view. */
export async function renderSvg(spec: Spec): Promise<string> {
  // Loaded here, not at the top: Vega costs ~0.3 s to import and only `train --save` needs it.
  const [vega, vl] = await Promise.all([import('vega'), import('vega-lite')]);
  const compiled = vl.compile(spec as unknown as Parameters<typeof vl.compile>[0]).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** The recipe in words: `SGD lr 0.02, momentum 0.9 (Nesterov), weight decay 0.0005, onecycle, crop,flip, batch 64 ...`. */
function recipeText(r: TrainState['recipe']): string {
  const sgd = [
    `SGD lr ${r.lr}`,
    ...(r.momentum > 0 ? [`momentum ${r.momentum}${r.nesterov ? ' (Nesterov)' : ''}`] : []),
    ...(r.weightDecay > 0 ? [`weight decay ${r.weightDecay}`] : []),
    ...(r.labelSmoothing > 0 ? [`label smoothing ${r.labelSmoothing}`] : []),
    ...(r.schedule !== 'constant' || r.warmupEpochs > 0 ? [`${r.schedule} schedule${r.warmupEpochs > 0 ? ` after ${r.warmupEpochs} warm-up epochs` : ''}`] : []),
    ...(r.augment !== 'none' ? [`augmentation ${r.augment}`] : []),
    ...(r.patience > 0 ? [`patience ${r.patience}`] : []),
    ...(r.tta !== 'none' ? [`test-time augmentation ${r.tta}`] : []),
  ];
  return `${sgd.join(', ')}, batch ${r.batchSize} (eval ${r.evalBatchSize}), init ${r.init}, seed ${r.seed} (--recipe ${r.preset})`;
}

/**
 * Which data the run trained on, in words: the page said how many images, not which (issue #35). An image folder's
 * digest is the SHA-256 of its listing (names, sizes, times), which a resume holds the folder to.
 */
export function dataSetText(d: NonNullable<TrainState['data']>): string {
  const records = `${d.records.toLocaleString('en-US')} records`;
  if (d.dataset === 'images') return `the image folder ${d.images} (${records}${d.skipBadImages ? ', unreadable files left out' : ''}${/^[0-9a-f]{64}$/.test(d.archiveMd5) ? `; listing SHA-256 ${d.archiveMd5.slice(0, 16)}` : ''})`;
  const title = d.dataset === 'cifar100' ? `CIFAR-100 (${d.labels ?? 'fine'} labels)` : 'CIFAR-10';
  const kind = d.official === true ? `the official ${title}` : d.official === false ? `NOT the official ${title}` : title;
  return `${kind}: ${records}${d.archiveMd5 !== 'unknown' ? `, archive MD5 ${d.archiveMd5}` : ''}, from ${shownUrl(d.url)}; unpacked in ${d.dataDir}`; // a password in the URL as ***
}

/**
 * The best epoch in words, and where its weights are: in best/ (--keep-best), in the run's own files (it is the
 * last epoch), or nowhere, which a reader who saw `best epoch 6` beside a model of epoch 8 was not told.
 */
export function bestText(state: Pick<TrainState, 'best' | 'keepBest' | 'epoch' | 'batch'>): string {
  const best = state.best!;
  const saved = state.batch > 0 ? `epoch ${state.epoch} at batch ${state.batch}` : `epoch ${state.epoch - 1}`;
  const where = state.keepBest ? 'kept in best/' : best.epoch === state.epoch - 1 && state.batch === 0 ? 'the saved model' : `its weights were not kept: the saved model is ${saved}; --keep-best keeps the best in best/`;
  return `${best.epoch}: valid accuracy ${best.validAcc.toFixed(4)} (${where})`;
}

/** The whole page. */
export async function renderReport(state: TrainState, meta: ReportMeta): Promise<string> {
  const classNames = state.classNames ?? DEFAULT_CLASS_NAMES;
  const history = state.history;
  const last = history[history.length - 1];
  const withLr = history.some((m) => m.lr !== undefined && m.lr > 0);
  const [lossSvg, accSvg, lrSvg, confusionSvg] = await Promise.all([
    history.length > 0 ? renderSvg(curveSpec(history, 'Loss')) : null,
    history.length > 0 ? renderSvg(curveSpec(history, 'Acc')) : null,
    withLr ? renderSvg(lrSpec(history)) : null,
    state.confusion ? renderSvg(confusionSpec(state.confusion, classNames)) : null,
  ]);
  const r = state.recipe;
  const facts: [string, string][] = [
    ['epochs done', `${state.epoch} of ${r.epochs}${state.batch > 0 ? ` (epoch ${state.epoch} stopped at batch ${state.batch})` : stoppedEarly(state) ? ` (--patience ${r.patience}: ${earlyStopText(state)})` : ''}`],
    ['recipe', recipeText(r)],
    ...(state.data ? [['data set', dataSetText(state.data)] as [string, string]] : []),
    ['data', `${state.limitTrain === null ? 'all' : `first ${state.limitTrain}`} training, ${state.limitTest === null ? 'all' : `first ${state.limitTest}`} test images${r.validSplit > 0 ? `; ${r.validSplit < 1 ? `${r.validSplit * 100}% of the` : r.validSplit} training images held out to validate on` : '; the test images validate'}`],
    ...(last ? [['last epoch', `valid accuracy ${last.validAcc.toFixed(4)}, valid loss ${last.validLoss.toFixed(4)}`] as [string, string]] : []),
    ...(state.best ? [['best epoch', bestText(state)] as [string, string]] : []),
    ...(state.test ? [['test split', `loss ${state.test.loss.toFixed(4)}, accuracy ${state.test.acc.toFixed(4)} (after the last epoch)`] as [string, string]] : []),
    ...(meta.backend ? [['backend', meta.backend] as [string, string]] : []),
    ['written', meta.generated.toISOString()],
  ];
  const epochRows = history
    .map((m) => `<tr><td>${m.epoch}</td><td>${m.trainLoss.toFixed(6)}</td><td>${m.trainAcc.toFixed(6)}</td><td>${m.validLoss.toFixed(6)}</td><td>${m.validAcc.toFixed(6)}</td><td>${m.lr === undefined ? '-' : lrText(m.lr)}</td><td>${hhmmss(m.seconds)}</td></tr>`)
    .join('\n');
  const perClass = state.confusion ? perClassAccuracy(state.confusion) : [];
  const classRows = perClass
    .map((c, i) => `<tr><td>${escapeHtml(classNames[i] ?? String(i))}</td><td>${c.correct} / ${c.count}</td><td>${Number.isNaN(c.accuracy) ? '-' : c.accuracy.toFixed(4)}</td></tr>`)
    .join('\n');
  // The numbers behind the charts, for scripts (and tests) that read the page.
  const data = JSON.stringify({ history, confusion: state.confusion ?? null, classNames }).replace(/</g, '\\u003c');
  const figure = (id: string, svg: string | null, empty: string) => `<section id="${id}">${svg ?? `<p class="empty">${empty}</p>`}</section>`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>alexnet training report</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em auto; max-width: 1100px; padding: 0 1em; color: #222; }
.charts { display: flex; flex-wrap: wrap; gap: 1em; }
table { border-collapse: collapse; margin: 1em 0; }
td, th { padding: 2px 10px; text-align: right; border-bottom: 1px solid #ddd; }
td:first-child, th:first-child { text-align: left; }
dl { display: grid; grid-template-columns: max-content auto; gap: 2px 1em; }
dt { color: #666; }
.empty { color: #888; }
</style>
</head>
<body>
<h1>alexnet training report</h1>
<dl>${facts.map(([k, v]) => `<dt>${escapeHtml(k)}</dt><dd>${escapeHtml(v)}</dd>`).join('')}</dl>
<div class="charts">
${figure('loss', lossSvg, 'no finished epoch yet')}
${figure('accuracy', accSvg, 'no finished epoch yet')}
${figure('lr', lrSvg, 'no learning rate recorded yet')}
</div>
${figure('confusion', confusionSvg, 'no finished epoch yet')}
<h2>Per-class accuracy (validation split, last epoch)</h2>
<table id="per-class"><tr><th>class</th><th>correct</th><th>accuracy</th></tr>
${classRows}
</table>
<h2>Epochs</h2>
<table id="epochs"><tr><th>epoch</th><th>train loss</th><th>train acc</th><th>valid loss</th><th>valid acc</th><th>lr</th><th>time</th></tr>
${epochRows}
</table>
<script type="application/json" id="report-data">${data}</script>
</body>
</html>
`;
}
