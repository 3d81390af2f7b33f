// What users rely on, as an invariant (issue #17): the same seed gives the same epoch lines, `Time` aside, in
// every way of running `alexnet train`: piped, on a terminal with the progress bar, with -q, as --json (its
// numbers equal the text's), and interrupted with Ctrl-C on a terminal and then resumed. Each backend that
// starts here is held to its own determinism (backends round differently, so each is compared with itself).
//
// The terminal runs go through script(1), and Ctrl-C is typed into the terminal once the bar shows the second
// epoch, so the interruption lands mid-epoch whatever the machine's speed. The bar used to start reads of its
// own that raced the training loop's: on a terminal, Train Loss and Train Acc came out wrong (issue #17).

import assert from 'node:assert/strict';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { cifarEntries, gzipTar } from '../scripts/fixture.js';
import { runCli, runOnTerminal, serveArchive, tmpDir, useBackend } from './helpers.js';

const archive = gzipTar(cifarEntries({ trainPerBatch: 100, test: 200, seed: 21 }));
const EPOCH = /Epoch (\d+)\. Train Loss: (\d+\.\d{6}), Train Acc: (\d\.\d{6}), Valid Loss: (\d+\.\d{6}), Valid Acc: (\d\.\d{6}), Time \d\d:\d\d:\d\d/g;

/** The epoch lines in some output, each without its Time. */
const epochLines = (text: string) => [...text.matchAll(EPOCH)].map((m) => m[0].replace(/, Time .*$/, ''));

/** --json's epoch objects as the text line prints them, Time aside. */
function jsonAsLines(stdout: string): string[] {
  return stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, number | string>).filter((o) => o.type === 'epoch')
    .map((o) => `Epoch ${o.epoch}. Train Loss: ${Number(o.trainLoss).toFixed(6)}, Train Acc: ${Number(o.trainAcc).toFixed(6)}, Valid Loss: ${Number(o.validLoss).toFixed(6)}, Valid Acc: ${Number(o.validAcc).toFixed(6)}`);
}

let webgpuWhy: string | null = null;
try {
  await useBackend('webgpu');
} catch (e) {
  webgpuWhy = (e as Error).message;
}
if (webgpuWhy !== null && process.env.ALEXNET_REQUIRE_WEBGPU === '1') throw new Error(`ALEXNET_REQUIRE_WEBGPU=1 but webgpu does not start: ${webgpuWhy}`);

// Each backend with enough batches an epoch for the bar to redraw during it and for Ctrl-C to land inside it.
const BACKENDS: { name: string; args: string[]; skip: string | false }[] = [
  { name: 'wasm, 2 threads', args: ['--backend', 'wasm', '--threads', '2', '--limit-train', '160', '--limit-test', '64', '--batch-size', '16'], skip: false },
  { name: 'webgpu', args: ['--backend', 'webgpu', '--limit-train', '32', '--limit-test', '16', '--batch-size', '8', '--eval-batch-size', '8'], skip: webgpuWhy === null ? false : `webgpu does not start here: ${webgpuWhy}` },
];

describe('the same seed gives the same epoch lines in every way of running', () => {
  let served: Awaited<ReturnType<typeof serveArchive>>;
  before(async () => {
    served = await serveArchive(archive);
  });
  after(() => served.close());
  const data = () => served.flags;

  for (const b of BACKENDS) {
    test(b.name, { skip: b.skip }, async () => {
      const args = ['train', '--epochs', '2', '--seed', '7', ...b.args, ...data()];
      const save = path.join(tmpDir(), 'run');
      // The runs do not depend on one another (nor their numbers on timing), so they run side by side.
      const [piped, quiet, json, terminal, cut] = await Promise.all([
        runCli(args, { timeoutMs: 300_000 }),
        runCli([...args, '-q'], { timeoutMs: 300_000, stderrToFile: true }), // as `2>err.log`: nothing at all there
        runCli([...args, '--json', '-q'], { timeoutMs: 300_000 }),
        runOnTerminal(args, { timeoutMs: 300_000 }),
        runOnTerminal([...args, '--save', save], { ctrlC: (screen) => /epoch 1 \[/.test(screen), timeoutMs: 300_000 }),
      ]);
      assert.equal(piped.code, 0, piped.stderr);
      const want = epochLines(piped.stdout);
      assert.equal(want.length, 2, piped.stdout);

      assert.equal(quiet.code, 0, quiet.stderr);
      assert.equal(quiet.stderr, '', '-q: nothing on stderr');
      assert.deepEqual(epochLines(quiet.stdout), want, '-q');

      assert.equal(json.code, 0, json.stderr);
      assert.deepEqual(jsonAsLines(json.stdout), want, '--json');

      assert.equal(terminal.code, 0, terminal.screen);
      assert.match(terminal.screen, /epoch 0 \[[=-]+\] \d+\/\d+ batches \| .* \| lr 1\.00e-1 \| ETA /, 'the bar was shown, with the learning rate');
      assert.deepEqual(epochLines(terminal.screen), want, 'on a terminal, with the progress bar');

      assert.equal(cut.code, 130, cut.screen);
      assert.match(cut.screen, /error: interrupted by SIGINT at epoch 1, batch \d+; checkpoint saved in /);
      const resumed = await runCli(['train', '--resume', save], { timeoutMs: 300_000 });
      assert.equal(resumed.code, 0, resumed.stderr);
      assert.match(resumed.stderr, /^resuming from .* at epoch 1, batch \d+$/m);
      assert.deepEqual([...epochLines(cut.screen), ...epochLines(resumed.stdout)], want, 'interrupted with Ctrl-C, then resumed');
    });
  }
});
