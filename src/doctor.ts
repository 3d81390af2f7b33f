// `alexnet doctor`'s findings: Node.js, each backend's packages, libraries and adapters, what `auto` picks, and a
// fix for each problem. The command (src/commands/doctor.ts) prints them.

import { backendModules, initBackend, type ActiveBackend, type Fix } from './backends/index.js';
import { IMAGE_WORDS, imageDecoder } from './data/image.js';

export interface DoctorReport {
  node: { version: string; napi: number; ok: boolean };
  /** The image decoder of `predict` and `--images`: sharp and its libvips, or why it does not load. */
  images: { sharp: string; vips: string } | { error: string };
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
  const decoder = await imageDecoder();
  const images = 'error' in decoder ? { error: decoder.error.message } : decoder;
  if ('error' in decoder) fixes.push({ problem: decoder.error.message, fix: decoder.error.hint ?? 'npm rebuild sharp' });
  sections.push({ title: 'images', lines: ['error' in decoder ? `FAIL ${decoder.error.message}` : `ok   sharp ${decoder.sharp} (libvips ${decoder.vips}) decodes ${IMAGE_WORDS.replace(' or ', ' and ')} for predict and --images`] });
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
  const report: DoctorReport = { node, images, backends, auto, canTrain: info !== null, gpuBackend: info?.gpu ?? false, fixes: dedupe(fixes) };
  return { report, sections };
}

function dedupe(fixes: Fix[]): Fix[] {
  const seen = new Set<string>();
  return fixes.filter((f) => (seen.has(f.problem) ? false : (seen.add(f.problem), true)));
}
