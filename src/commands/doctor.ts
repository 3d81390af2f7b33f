import { noGpuFixes } from '../backends/index.js';
import { doctorReport, type DoctorReport, type Section } from '../doctor.js';
import { AlexnetError } from '../errors.js';
import { processConsole, type Console } from './output.js';

export interface DoctorFlags {
  json?: boolean;
  requireGpu?: boolean;
}

export interface DoctorOptions {
  json: boolean;
  /** Exit 3 unless a GPU backend works. */
  requireGpu: boolean;
}

export function doctorOptions(flags: DoctorFlags): DoctorOptions {
  return { json: Boolean(flags.json), requireGpu: Boolean(flags.requireGpu) };
}

export async function doctorCommand(opts: DoctorOptions, con: Console = processConsole): Promise<DoctorReport> {
  const { report, sections } = await doctorReport();
  con.out((opts.json ? JSON.stringify({ type: 'doctor', ...report }) : doctorText(report, sections)) + '\n');
  if (!report.canTrain) throw new AlexnetError('BACKEND', 'no backend can train here', 'follow the fixes above');
  if (opts.requireGpu && !report.gpuBackend) {
    // Each GPU backend's fix: the first of all the fixes could be the CPU-only tfjs-node's, which answers no GPU.
    throw new AlexnetError('NO_GPU', 'no GPU backend works here', noGpuFixes());
  }
  return report;
}

export function doctorText(r: DoctorReport, sections: Section[]): string {
  const lines = [`${r.node.ok ? 'ok  ' : 'FAIL'} Node.js ${r.node.version}, N-API ${r.node.napi}`];
  for (const s of sections) lines.push('', `${s.title}:`, ...s.lines);
  lines.push(
    '',
    'error' in r.auto ? `FAIL auto backend: ${r.auto.error}` : `ok   auto backend: ${r.auto.detail}`,
    `${r.gpuBackend ? 'ok  ' : '--  '} GPU backend: ${r.gpuBackend ? 'yes' : 'no'}`,
  );
  if (r.fixes.length > 0) {
    lines.push('', 'fixes:');
    for (const f of r.fixes) lines.push(`  - ${f.problem}`, `    fix: ${f.fix}`);
  }
  lines.push('', r.canTrain ? `can train: yes, on ${'backend' in r.auto ? r.auto.backend : '?'}` : 'can train: no');
  return lines.join('\n');
}
