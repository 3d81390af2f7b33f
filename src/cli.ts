// The command layer: wires commands and flags, and is the one place that prints errors and sets the exit
// code (handleError). Each command converts its flag strings once and calls a typed function.

import { realpathSync } from 'node:fs';
import { delimiter as pathDelimiter, join as pathJoin } from 'node:path';
import { Command, CommanderError, Option } from 'commander';
import { printable } from './text.js';
import { EXIT_CODES, isAlexnetError } from './errors.js';
import { errnoCode, errnoWords } from './files.js';
import { installProcessHandlers, isStdoutClosed } from './commands/lifecycle.js';
import { packageVersion } from './commands/output.js';
import { dataRequest, downloadCommand, type DataFlags } from './commands/download.js';
import { OFFICIAL_URL } from './data/download.js';
import { BACKEND_CHOICES, BACKEND_HELP, BACKEND_OPTIONS } from './backends/table.js';
import { closeBackend } from './backends/lifecycle.js';
import { LIMITS, RECIPE, TTAS, type Field } from './recipe.js';

/**
 * How this process was started, as a person would type it again: `npx alexnet`, `alexnet` (on PATH), or `node
 * PATH/bin/alexnet`. Hints name commands this way, so that they run as printed: after `npm ci` there is no
 * `alexnet` on PATH, and `npx alexnet` works only inside the checkout (issue #20).
 */
export function howStarted(argv: string[] = process.argv, env: NodeJS.ProcessEnv = process.env): string {
  if (env.npm_command === 'exec') return 'npx alexnet';
  const script = argv[1];
  if (!script) return 'alexnet';
  const real = (p: string) => {
    try {
      return realpathSync(p);
    } catch {
      return null;
    }
  };
  const mine = real(script);
  const onPath = (env.PATH ?? '').split(pathDelimiter).some((dir) => dir && mine !== null && real(pathJoin(dir, 'alexnet')) === mine);
  if (onPath) return 'alexnet';
  return `node ${/\s/.test(script) ? JSON.stringify(script) : script}`;
}

/** A hint with its commands as this process was started (`alexnet train ...` -> `npx alexnet train ...`). */
const asStarted = (hint: string) => hint.replace(/`alexnet(?=[ `])/g, '`' + howStarted());

/**
 * The one place that prints an error: one `error:` line and one `hint:` line, each printable (a file name with an
 * escape or a newline cannot forge a line or retitle the terminal: issue #20), and the exit code.
 */
export function handleError(e: unknown): number {
  if (isAlexnetError(e) && e.code === 'PIPE') return e.exitCode; // the reader left: nothing to say
  if (isAlexnetError(e)) {
    process.stderr.write(`error: ${printable(e.message)}\n`);
    if (e.hint) process.stderr.write(`hint: ${printable(asStarted(e.hint))}\n`);
    return e.exitCode;
  }
  if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2; // commander printed it already
  // A file system error nobody caught (EIO on a read, fsync or rename...): one line naming the operation and the
  // file, not a stack: the disk failed, not the tool.
  const errno = e as NodeJS.ErrnoException | undefined;
  if (typeof errno?.syscall === 'string' && errnoCode(e) !== undefined) {
    process.stderr.write(`error: ${printable(errnoWords(e))} (${errno.syscall}${errno.path ? ` ${printable(errno.path)}` : ''})\n`);
    process.stderr.write('hint: check the disk and the file system (the kernel log says more), then run the command again\n');
    return 1;
  }
  // A bug, not a user mistake: keep the stack so it can be reported.
  process.stderr.write(`error: unexpected failure: ${(e as Error)?.stack ?? String(e)}\n`);
  process.stderr.write('hint: please report this at the project issue tracker with the command you ran\n');
  return 1;
}

const dataDirOption = () => new Option('--data-dir <dir>', 'data directory (default: $ALEXNET_DATA_DIR, $XDG_CACHE_HOME/alexnet or ~/.cache/alexnet)');
const urlOption = () => new Option('--url <url>', `archive URL: http(s)://, file:// or a path (default: the data set's official one, for CIFAR-10 ${OFFICIAL_URL})`);
const md5Option = () => new Option('--md5 <hex>', 'expected MD5 of the archive (default: the official archive\'s)');
/** Where the data is, and where to get it if it is missing: every command that reads a data set takes these. */
const dataOptions = (verifyHelp = 'skip the MD5 check of a download') => [
  new Option('--dataset <name>', 'the data set (default: cifar10)').choices(['cifar10', 'cifar100']),
  new Option('--labels <kind>', 'CIFAR-100\'s labels: fine, 100 classes (the default), or coarse, 20 superclasses').choices(['fine', 'coarse']),
  new Option('--images <dir>', 'your own images instead: DIR/<class>/*.png|jpg, or DIR/train/<class>/... and DIR/test/<class>/...'),
  new Option('--skip-bad-images', 'with --images: leave out files that are not readable PNG or JPEG images (counted), instead of stopping'),
  dataDirOption(),
  urlOption(),
  md5Option(),
  new Option('--no-verify', verifyHelp),
];
const withOptions = (cmd: Command, options: Option[]) => options.reduce((c, o) => c.addOption(o), cmd);

/** A switch of the recipe (`--nesterov`) as commander options: it, and `--no-` it to turn a named recipe's off. */
function switchOptions(f: Field<unknown>): Option[] {
  return [new Option(f.flag, `${f.help} (default: off, or as --recipe sets it)`), new Option(`--no-${f.flag.slice(2)}`, `turn ${f.flag} off`)];
}

/** A field of the recipe's tables (src/recipe.ts) as a commander option; `help` and `defaultText` may be the command's own. */
function fieldOption(f: Field<unknown>, over: { flag?: string; defaultText?: string } = {}): Option {
  const text = over.defaultText ?? f.defaultText;
  const flag = `${over.flag ?? f.flag} ${f.arg}`;
  // Commander shows `(default: ...)` only for a default value: one given only in words goes into the help.
  if (f.default === undefined || over.defaultText !== undefined) return new Option(flag, text ? `${f.help} (default: ${text})` : f.help);
  return new Option(flag, f.help).default(String(f.default), text);
}
/** The backends' own options (wasm's --threads), each named with the backends that take it. */
const backendSettingOptions = (only: 'train' | 'eval' = 'train') => Object.values(BACKEND_OPTIONS).map(({ field }) => fieldOption(only === 'eval' && field.evalHelp ? { ...field, help: field.evalHelp } : field));
/** Whether commander got a flag from the command line (not a default). */
const fromCli = (cmd: Command) => (name: string) => cmd.getOptionValueSource(name) === 'cli';

export function buildProgram(): Command {
  const program = new Command('alexnet')
    .description('Train the classic small AlexNet on CIFAR-10 (on the GPU through WebGPU or tfjs-node-gpu, else on the CPU).')
    .version(packageVersion())
    .exitOverride();

  withOptions(
    program
      .command('download')
      .description('download, verify and unpack the CIFAR-10 (or --dataset cifar100) binary batches'),
    dataOptions('skip the MD5 check'),
  )
    .option('--force', 'download and unpack again even if the data is there')
    .option('-q, --quiet', 'no progress or messages on stderr')
    .action(async (flags: DataFlags) => {
      await downloadCommand(dataRequest(flags), { quiet: flags.quiet ?? false });
    });

  program
    .command('summary')
    .description('print the network: each layer, its output shape and parameters, and the output of a zero input')
    .option('--json', 'one JSON object instead of the table')
    .option('--classes <n>', 'the head\'s classes: 10 (CIFAR-10), 100 (CIFAR-100), 20 (its coarse labels), an image folder\'s', '10')
    .addOption(backendOption())
    .option('--gpu', GPU_HELP)
    .option('-q, --quiet', 'no backend line on stderr')
    .action(async (flags) => {
      const { summaryCommand, summaryOptions } = await import('./commands/summary.js');
      await summaryCommand(summaryOptions(flags));
    });

  withOptions(program.command('train').description('train on CIFAR-10 (or CIFAR-100, or your own images with --images) with the seed\'s recipe, or --recipe tuned and the flags below; one line per epoch on stdout'), [
    ...dataOptions(),
    ...Object.values(RECIPE).flatMap((f) => (f.arg === '' ? switchOptions(f) : [fieldOption(f)])),
    backendOption(),
    new Option('--gpu', GPU_HELP),
    ...Object.values(LIMITS).map((f) => fieldOption(f)),
    ...backendSettingOptions(),
  ])
    .option('--json', 'one JSON object per epoch, then (with --valid-split) a test object, then a summary object')
    .option('--save <dir>', 'after each epoch write a checkpoint (model.json, weights-<hash>.bin, state.json, metrics.jsonl) and report.html into DIR')
    .option('--resume <dir>', 'continue the run in DIR with its data and target epochs (saving there unless --save is given)')
    .option('--keep-best', 'with --save: also keep the epoch with the best validation accuracy in DIR/best')
    .option('--overwrite', 'with --save: replace a run already in DIR (its checkpoint, report and best/), which is otherwise refused')
    .option('-q, --quiet', 'nothing on stderr but errors')
    .action(async (flags, cmd: Command) => {
      const { trainCommand, trainOptions } = await import('./commands/train.js');
      await trainCommand(trainOptions(flags, fromCli(cmd)));
    });

  withOptions(
    program
      .command('samples')
      .description('write a PNG grid of decoded images, each named by its class, to check the data at a glance'),
    dataOptions(),
  )
    .addOption(new Option('--split <name>', 'which split').choices(['train', 'test']).default('train'))
    .option('--count <n>', 'images to show (with --classes: count/10 per class, rounded up)', '100')
    .option('--classes', 'one row per class with its name, instead of the first images in file order')
    .option('--scale <n>', 'enlarge each pixel to an NxN block (nearest neighbour)', '4')
    .option('--out <file>', 'PNG to write, or - for stdout', 'samples.png')
    .option('-q, --quiet', 'nothing on stderr but errors')
    .action(async (flags) => {
      const { samplesCommand, samplesOptions } = await import('./commands/samples.js');
      await samplesCommand(samplesOptions(flags));
    });

  withOptions(program.command('eval').description('test loss and accuracy of a saved model, per class, and its confusion matrix').requiredOption('--model <dir>', 'a directory written by `alexnet train --save DIR`'), [
    ...dataOptions(),
    fieldOption(RECIPE.evalBatchSize, { flag: '--batch-size', defaultText: `the run's --eval-batch-size, else ${RECIPE.evalBatchSize.default}` }),
    fieldOption(LIMITS.limitTest, { defaultText: "the run's --limit-test" }),
    new Option(`${RECIPE.tta.flag} ${RECIPE.tta.arg}`, RECIPE.tta.evalHelp!).choices([...TTAS]),
    ...backendSettingOptions('eval'),
    backendOption(),
    new Option('--gpu', GPU_HELP),
  ])
    .option('--json', 'one JSON object')
    .option('-q, --quiet', 'nothing on stderr but errors')
    .action(async (flags, cmd: Command) => {
      const { evalOptions, evalCommand } = await import('./commands/eval.js');
      await evalCommand(evalOptions(flags, fromCli(cmd)));
    });

  program
    .command('predict')
    .description('the most probable classes of PNG or JPEG images (centre-cropped, area-averaged to 32x32)')
    .argument('<image...>', 'PNG or JPEG files, any size')
    .requiredOption('--model <dir>', 'a directory written by `alexnet train --save DIR`')
    .option('--top <k>', 'classes to show per image (default: 3, or all of a model\'s classes where it has fewer)')
    .addOption(backendOption())
    .option('--gpu', GPU_HELP)
    .option('--json', 'one JSON object per image')
    .option('-q, --quiet', 'nothing on stderr but errors')
    .action(async (images: string[], flags) => {
      const { predictOptions, predictCommand } = await import('./commands/predict.js');
      await predictCommand(predictOptions(images, flags));
    });

  program
    .command('export')
    .description('write a trained model for use elsewhere: ONNX (ONNX Runtime, opset 13) or a TensorFlow.js folder for the browser')
    .requiredOption('--model <dir>', 'a directory written by `alexnet train --save DIR`')
    .addOption(new Option('--format <name>', 'onnx: one .onnx file; tfjs: a folder with model.json for tf.loadLayersModel').choices(['onnx', 'tfjs']).default('onnx'))
    .addOption(new Option('--input <kind>', 'what the model takes: normalized (what the network sees: float32, NCHW for ONNX), or raw (uint8 0-255 pixels, NHWC, as a decoder gives them; normalised inside)').choices(['normalized', 'raw']).default('normalized'))
    .requiredOption('--out <path>', 'the .onnx file (its class names go to NAME.labels.txt beside it), or the folder for --format tfjs')
    .option('--overwrite', 'replace an earlier export at --out, which is otherwise refused')
    .addOption(backendOption())
    .option('--gpu', GPU_HELP)
    .option('--json', 'one JSON object')
    .option('-q, --quiet', 'nothing on stderr but errors')
    .action(async (flags) => {
      const { exportCommand, exportOptions } = await import('./commands/export.js');
      await exportCommand(exportOptions(flags));
    });

  withOptions(program.command('bench').description('time the training step, evaluation and decoding on synthetic data of the real shapes'), [
    new Option('--backend <name>', `${BACKEND_CHOICES.join(', ')}, or all (every backend that starts here, but cpu and software GPU adapters)`).choices([...BACKEND_CHOICES, 'all']).default('auto'),
    fieldOption(RECIPE.batchSize),
    fieldOption(RECIPE.evalBatchSize),
    new Option('--steps <n>', 'timed steps per measurement (after 3 warm-up steps)').default('10'),
    new Option('--no-decode', 'skip timing the decoding of a full-size CIFAR-10'),
    ...backendSettingOptions(),
    new Option('--gpu', GPU_HELP),
  ])
    .option('--json', 'one JSON object per backend')
    .option('-q, --quiet', 'no backend line on stderr')
    .action(async (flags, cmd: Command) => {
      const { benchCommand, benchOptions } = await import('./commands/bench.js');
      await benchCommand(benchOptions(flags, fromCli(cmd)));
    });

  program
    .command('doctor')
    .description('check Node.js, WebGPU (Vulkan/Metal/D3D12 adapters), tfjs-node-gpu (CUDA/cuDNN) and the GPU, with a fix for each problem')
    .option('--json', 'one JSON object')
    .option('--require-gpu', `exit with code ${EXIT_CODES.NO_GPU} unless a GPU backend works`)
    .action(async (flags) => {
      const { doctorCommand, doctorOptions } = await import('./commands/doctor.js');
      await doctorCommand(doctorOptions(flags));
    });

  return program;
}

const backendOption = () => new Option('--backend <name>', BACKEND_HELP).choices([...BACKEND_CHOICES]).default('auto');
const GPU_HELP = 'insist on a GPU backend (tfjs-node-gpu on CUDA, or WebGPU on a hardware adapter); exit 3 otherwise';

/**
 * What PyTorch's and Keras's users type, and what this tool calls it (issue #25): commander's own guess named
 * `--recipe` for `--device`.
 */
const MISTAKES: [RegExp, string][] = [
  [/^error: option '--backend <name>' argument '(gpu|cuda)' is invalid/, 'for a GPU pass --gpu (auto then picks tensorflow on CUDA or webgpu), or name one: --backend tensorflow or --backend webgpu'],
  [/^error: unknown option '--device'/, 'the device is chosen with --gpu (any GPU backend) or --backend auto|tensorflow|webgpu|wasm|cpu'],
  [/^error: unknown option '--(learning-rate|learning_rate|lr-rate)'/, 'did you mean --lr?'],
  [/^error: unknown option '--(validation-split|validation_split|val-split)'/, 'did you mean --valid-split (a count, or a fraction such as 0.1)?'],
];

export async function main(argv: string[]): Promise<number> {
  installProcessHandlers(asStarted);
  const program = buildProgram();
  for (const c of [program, ...program.commands]) {
    // commander's `(Did you mean --epochs?)` goes into the one hint line, after the one error line.
    const usage = c === program ? '--help' : `${c.name()} --help`;
    c.exitOverride().showHelpAfterError(false).configureOutput({
      writeErr: (s) => process.stderr.write(s),
      outputError: (text, write) => {
        const [first, ...rest] = text.trim().split('\n');
        const suggestion = rest.map((l) => /^\(Did you mean (.+)\?\)$/.exec(l)?.[1]).find(Boolean);
        const mistake = MISTAKES.find(([re]) => re.test(first ?? ''))?.[1];
        write(`${printable(first ?? '')}\n`);
        // A question ends its own sentence (`did you mean --lr? run ...`); a statement takes a `;`.
        const lead = mistake ? `${mistake}${mistake.endsWith('?') ? ' ' : '; '}` : suggestion ? `did you mean ${suggestion}? ` : '';
        write(`hint: ${lead}run \`${howStarted()} ${usage}\` for usage\n`);
      },
    });
    if (c === program) continue;
    // Defaults as a person writes them (default: 20), not as JSON strings (default: "20").
    for (const o of c.options) if (typeof o.defaultValue === 'string' && o.defaultValueDescription === undefined) o.defaultValueDescription = o.defaultValue;
  }
  try {
    await program.parseAsync(argv);
    return isStdoutClosed() ? EXIT_CODES.PIPE : 0;
  } catch (e) {
    return handleError(e);
  } finally {
    await closeBackend().catch(() => {}); // the answer is out; a device that fails to close changes nothing
  }
}
