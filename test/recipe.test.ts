// The recipe's tables (src/recipe.ts), table-driven: each field's flag parsing and state.json check, the seed's
// defaults, and the commands' options derived from them (one statement of each field: issue #19).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BACKEND_OPTIONS, settingsProblem } from '../src/backends/table.js';
import { buildProgram } from '../src/cli.js';
import { stateProblem } from '../src/state.js';
import { LIMITS, RECIPE, parseField, presetRecipe, recipeProblem, savedRecipe, lessonRecipe } from '../src/recipe.js';

test('each field parses what its kind allows and names the flag otherwise', () => {
  // [field, text, value or the error's message]
  const cases: [keyof typeof RECIPE, string, unknown][] = [
    ['epochs', '20', 20],
    ['epochs', ' 7 ', 7],
    ['epochs', '0', '--epochs must be an integer in 1..1000000, got "0"'],
    ['epochs', '2.5', '--epochs must be an integer in 1..1000000, got "2.5"'],
    // Integer flags take every decimal form whose value is whole, as the README says number flags do.
    ['epochs', '1e0', 1],
    ['epochs', '2E1', 20],
    ['epochs', '20.0', 20],
    ['epochs', '2.5e0', '--epochs must be an integer in 1..1000000, got "2.5e0"'],
    ['epochs', '0x14', '--epochs must be an integer in 1..1000000, got "0x14"'],
    ['epochs', '1e7', '--epochs must be an integer in 1..1000000, got "1e7"'],
    ['batchSize', '1.6e1', 16],
    ['batchSize', '6.4e+1', 64],
    ['seed', '-0', 0],
    ['batchSize', '65536', 65536],
    ['batchSize', '65537', '--batch-size must be an integer in 1..65536, got "65537"'],
    ['lr', '1e-3', 0.001],
    ['lr', '0', '--lr must be a positive number, got "0"'],
    ['lr', 'Infinity', '--lr must be a positive number, got "Infinity"'],
    ['lr', '', '--lr must be a positive number, got ""'],
    ['seed', '4294967295', 4294967295],
    ['seed', '-1', '--seed must be an integer in 0..4294967295, got "-1"'],
    ['patience', '3', 3],
    ['patience', '0', 0],
    ['patience', '-1', '--patience must be an integer in 0..1000000, got "-1"'],
    ['labelSmoothing', '0.1', 0.1],
    ['labelSmoothing', '0', 0],
    ['labelSmoothing', '1', '--label-smoothing must be a number in [0, 1), got "1"'],
    ['labelSmoothing', '-0.1', '--label-smoothing must be a number in [0, 1), got "-0.1"'],
    ['init', 'glorot', 'glorot'],
    ['init', 'xavier', '--init must be one of pytorch, glorot, got "xavier"'],
  ];
  for (const [key, text, want] of cases) {
    if (typeof want === 'string' && want.startsWith('--')) assert.throws(() => parseField(RECIPE[key] as never, text), { code: 'USAGE', message: want, hint: `e.g. ${RECIPE[key].flag} ${RECIPE[key].example}` });
    else assert.equal(parseField(RECIPE[key] as never, text), want, `${key} ${JSON.stringify(text)}`);
  }
  assert.throws(() => parseField(LIMITS.limitTest, '0'), { message: '--limit-test must be an integer >= 1, got "0"' });
  assert.throws(() => parseField(RECIPE.evalBatchSize, 'x', '--batch-size'), { message: '--batch-size must be an integer in 1..65536, got "x"' });
});

test('the seed\'s recipe: 20 epochs, batch 64, plain SGD at lr 0.1, no schedule or augmentation, the test set validates, evaluation batch 128, PyTorch initialisation', () => {
  assert.deepEqual(lessonRecipe(5), {
    preset: 'seed', epochs: 20, batchSize: 64, lr: 0.1, momentum: 0, nesterov: false, weightDecay: 0, labelSmoothing: 0, schedule: 'constant', warmupEpochs: 0,
    augment: 'none', validSplit: 0, tta: 'none', patience: 0, evalBatchSize: 128, seed: 5, init: 'pytorch',
  });
  assert.equal(recipeProblem(lessonRecipe(5)), null);
  assert.deepEqual(presetRecipe('tuned', 5), { ...lessonRecipe(5), preset: 'tuned', lr: 0.02, momentum: 0.9, nesterov: true, weightDecay: 5e-4, schedule: 'onecycle', augment: 'crop,flip' });
  assert.equal(recipeProblem(presetRecipe('tuned', 5)), null);
});

test('a recipe saved before the optimiser options is read as the seed\'s; fields that contradict each other are refused', () => {
  const old = { epochs: 20, batchSize: 64, lr: 0.1, evalBatchSize: 128, seed: 5, init: 'pytorch' as const };
  assert.equal(recipeProblem(old), null);
  assert.deepEqual(savedRecipe(old), lessonRecipe(5));
  assert.equal(recipeProblem({ ...old, nesterov: true }), '--nesterov needs --momentum above 0 (as PyTorch\'s SGD)');
  assert.equal(recipeProblem({ ...old, warmupEpochs: 20 }), '--warmup-epochs 20 leaves no epoch of the schedule (--epochs 20)');
  assert.equal(recipeProblem({ ...old, augment: 'flip,crop' }), 'recipe.augment must be one of none, flip, crop, crop,flip, got "flip,crop"');
  assert.equal(parseField(RECIPE.augment, 'flip,crop'), 'crop,flip', 'the other order, on the command line');
});

test('a saved recipe and saved settings are checked field by field, the error naming the field', () => {
  const ok = lessonRecipe(1);
  const cases: [unknown, string][] = [
    [null, 'recipe must be an object'],
    [[], 'recipe must be an object'],
    [{ ...ok, epochs: 0 }, 'recipe.epochs must be an integer in 1..1000000, got 0'],
    [{ ...ok, lr: 'abc' }, 'recipe.lr must be a positive number, got "abc"'],
    [{ ...ok, init: undefined }, 'recipe.init must be one of pytorch, glorot, got undefined'],
    [{ ...ok, seed: 2 ** 32 }, 'recipe.seed must be an integer in 0..4294967295, got 4294967296'],
  ];
  for (const [recipe, message] of cases) assert.equal(recipeProblem(recipe), message);
  assert.equal(settingsProblem({ threads: 2 }), null);
  assert.equal(settingsProblem({ threads: 64 }), 'settings.threads must be an integer in 1..4, got 64');
  assert.equal(settingsProblem({ warp: 1 }), 'settings.warp is not an option of any backend');
  // A checkpoint from before backend settings has `threads`: still read, still checked.
  const state = { version: 1, recipe: ok, limitTrain: null, limitTest: null, epoch: 0, batch: 0, partial: null, history: [], weightsSha256: '0'.repeat(64) };
  assert.equal(stateProblem({ ...state, threads: 2 }), null);
  assert.equal(stateProblem({ ...state, threads: 9 }), 'threads must be an integer in 1..4, got 9');
  assert.equal(stateProblem({ ...state, limitTrain: 0 }), 'limitTrain must be null or an integer >= 1, got 0');
});

test('the commands\' options are the tables\' fields, with their defaults and help', () => {
  const program = buildProgram();
  const options = (name: string) => program.commands.find((c) => c.name() === name)!.options;
  const train = options('train');
  for (const f of [...Object.values(RECIPE), ...Object.values(LIMITS), ...Object.values(BACKEND_OPTIONS).map((o) => o.field)]) {
    const o = train.find((x) => x.long === f.flag);
    assert.ok(o, `train has ${f.flag}`);
    if (f.arg === '') {
      // A switch, and its --no- form (to turn off what a named recipe turns on).
      assert.equal(o.flags, f.flag);
      assert.ok(train.find((x) => x.long === `--no-${f.flag.slice(2)}`), `train has --no-${f.flag.slice(2)}`);
      continue;
    }
    assert.equal(o.flags, `${f.flag} ${f.arg}`);
    assert.ok(o.description.startsWith(f.help), `${f.flag}'s help`);
    if (f.default !== undefined) assert.equal(o.defaultValue, String(f.default), `${f.flag}'s default`);
  }
  assert.deepEqual(options('bench').filter((o) => ['--batch-size', '--eval-batch-size'].includes(o.long!)).map((o) => o.defaultValue), ['64', '128']);
  assert.equal(options('eval').find((o) => o.long === '--batch-size')!.description, `${RECIPE.evalBatchSize.help} (default: the run's --eval-batch-size, else 128)`);
});
