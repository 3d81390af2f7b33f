import { backendModules, initBackend, type ActiveBackend, type Fix } from '../backends/index.js';
import { AlexnetError } from '../errors.js';
import { processConsole, type Console } from './common.js';

export interface DoctorFlags {
  json?: boolean;
  requireGpu?: boolean;
}

export interface DoctorReport {
  node: { version: string; napi: number; ok: boolean };
  /** Each backend's section (what it found: packages, libraries, adapters), by backend name. */
  backends: Record<string, Record<string, unknown>>;
  auto: { backend: string; gpu: boolean; detail: string } | { error: string };
  canTrain: boolean;
  gpuBackend: boolean;
  fixes: Fix[];
}

interface Section {
  title: string;
  lines: string[];
}

export async function doctorReport(): Promise<{ report: DoctorReport; sections: Section[] }> {
  const napi = Number(process.versions.napi);
  const node = { version: process.versions.node, napi, ok: Number(process.versions.node.split('.')[0]) >= 20 };
  const fixes: Fix[] = [];
  if (!node.ok) fixes.push({ problem: `Node.js ${node.version} is older than this tool supports`, fix: 'use Node.js 20 or later' });

  const backends: DoctorReport['backends'] = {};
  const sections: Section[] = [];
  for (const { name, module } of await backendModules()) {
    const s = await module.doctor();
    if (s.lines.length === 0 && s.fixes.length === 0) continue;
    backends[name] = s.json;
    sections.push({ title: s.title, lines: s.lines });
    fixes.push(...s.fixes);
  }

  let auto: DoctorReport['auto'];
  let info: ActiveBackend | null = null;
  try {
    info = await initBackend('auto');
    auto = { backend: info.name, gpu: info.gpu, detail: info.detail };
  } catch (e) {
    auto = { error: (e as Error).message };
  }
  const report: DoctorReport = { node, backends, auto, canTrain: info !== null, gpuBackend: info?.gpu ?? false, fixes: dedupe(fixes) };
  return { report, sections };
}

function dedupe(fixes: Fix[]): Fix[] {
  const seen = new Set<string>();
  return fixes.filter((f) => (seen.has(f.problem) ? false : (seen.add(f.problem), true)));
}

export async function runDoctor(flags: DoctorFlags, con: Console = processConsole): Promise<DoctorReport> {
  const { report, sections } = await doctorReport();
  con.out((flags.json ? JSON.stringify({ type: 'doctor', ...report }) : doctorText(report, sections)) + '\n');
  if (!report.canTrain) throw new AlexnetError('BACKEND', 'no backend can train here', 'follow the fixes above');
  if (flags.requireGpu && !report.gpuBackend) {
    throw new AlexnetError('NO_GPU', 'no GPU backend works here', report.fixes[0]?.fix ?? 'see the fixes above');
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
