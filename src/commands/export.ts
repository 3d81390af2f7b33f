// `alexnet export`: the flags as typed options, the export (src/export.ts), and one line (or JSON) on stdout.

import { parseBackendChoice } from '../backends/index.js';
import { AlexnetError } from '../errors.js';
import { EXPORT_FORMATS, runExport, type ExportFormat, type ExportOptions, type ExportResult } from '../export.js';
import { logger, packageVersion, processConsole, type Console } from './output.js';
import { parsePath } from './parse.js';
import { INPUT_KINDS, type InputKind } from '../onnx.js';

export interface ExportFlags {
  model: string;
  format?: string;
  input?: string;
  out?: string;
  overwrite?: boolean;
  backend?: string;
  gpu?: boolean;
  json?: boolean;
  quiet?: boolean;
}

export interface ExportCommandOptions extends ExportOptions {
  json: boolean;
  quiet: boolean;
}

export function exportOptions(flags: ExportFlags): ExportCommandOptions {
  const format = flags.format ?? 'onnx';
  if (!(EXPORT_FORMATS as readonly string[]).includes(format)) {
    throw new AlexnetError('USAGE', `--format must be ${EXPORT_FORMATS.join(' or ')}, got ${JSON.stringify(format)}`, 'e.g. --format onnx --out model.onnx');
  }
  if (flags.out === undefined) {
    throw new AlexnetError('USAGE', 'export needs --out', format === 'onnx' ? 'e.g. --out model.onnx' : 'e.g. --out web-model (a folder)');
  }
  const input = flags.input ?? 'normalized';
  if (!(INPUT_KINDS as readonly string[]).includes(input)) throw new AlexnetError('USAGE', `--input must be ${INPUT_KINDS.join(' or ')}, got ${JSON.stringify(input)}`, 'e.g. --input raw (the model takes 0-255 pixels and normalises them itself)');
  return {
    modelDir: parsePath('--model', flags.model),
    format: format as ExportFormat,
    input: input as InputKind,
    out: parsePath('--out', flags.out),
    overwrite: Boolean(flags.overwrite),
    backend: parseBackendChoice(flags.backend ?? 'auto'),
    gpu: Boolean(flags.gpu),
    json: Boolean(flags.json),
    quiet: Boolean(flags.quiet),
    producerVersion: packageVersion(),
  };
}

export async function exportCommand(opts: ExportCommandOptions, con: Console = processConsole): Promise<ExportResult> {
  const r = await runExport(opts, { log: logger(con, opts.quiet) });
  const what = r.format === 'onnx' ? 'ONNX model' : 'TensorFlow.js model';
  con.out((opts.json
    ? JSON.stringify({ type: 'export', ...r })
    : `${what} written to ${r.out} (${r.bytes.toLocaleString('en-US')} bytes, ${r.classNames.length} classes${r.epochs === null ? '' : `, trained ${r.epochs} epoch${r.epochs === 1 ? '' : 's'}`}; class names in ${r.labels}); input: ${r.input}`) + '\n');
  return r;
}
