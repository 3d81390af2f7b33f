// `alexnet doctor`'s findings: Node.js, each backend's packages, libraries and adapters, what `auto` picks, and a
// fix for each problem. The command (src/commands/doctor.ts) prints them.

import { backendModules, initBackend, type ActiveBackend, type Fix } from './backends/index.js';

export interface DoctorReport {
  node: { version: string; napi: number; ok: boolean };
  /** Each backend's section (what it found: packages, libraries, adapters), by backend name. */
  backends: Record<string, Record<string, unknown>>;
  auto: { backend: string; gpu: boolean; detail: string } | { error: string };
  canTrain: boolean;
  gpuBackend: boolean;
  fixes: Fix[];
}

export interface Section {
  title: string;
  lines: string[];
}

export async function doctorReport(): Promise<{ report: DoctorReport; sections: Section[] }> {
  const napi = Number(process.versions.napi);
  // 20.9: sharp's least (it decodes the images of `predict` and `--images`).
  const [major, minor] = process.versions.node.split('.').map(Number) as [number, number];
  const node = { version: process.versions.node, napi, ok: major > 20 || (major === 20 && minor >= 9) };
  const fixes: Fix[] = [];
  if (!node.ok) fixes.push({ problem: `Node.js ${node.version} is older than this tool supports`, fix: 'use Node.js 20.9 or later' });

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
