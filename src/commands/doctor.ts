import { INSTALL_HINT, initBackend, keyLine, probeNative, type BackendInfo } from '../backend.js';
import { CUDA_LIBS, NAPI_BUILDS, diagnose, findLibraries, ldconfig, nvidiaDriver, type Fix } from '../doctor.js';
import { AlexnetError } from '../errors.js';

export interface DoctorFlags {
  json?: boolean;
  requireGpu?: boolean;
}

export interface DoctorReport {
  node: { version: string; napi: number; ok: boolean; fix?: string };
  flavours: { name: string; installed: boolean; loads: boolean; error?: string; problem?: string; fix?: string }[];
  auto: { backend: string; gpu: boolean; line: string } | { error: string };
  libraries: Record<string, string | null>;
  ldLibraryPath: string | null;
  driver: { version: string; gpus: string[] } | null;
  canTrain: boolean;
  gpuBackend: boolean;
  fixes: Fix[];
}

export async function doctorReport(): Promise<DoctorReport> {
  const napi = Number(process.versions.napi);
  const node = { version: process.versions.node, napi, ok: napi >= Math.min(...NAPI_BUILDS) && Number(process.versions.node.split('.')[0]) >= 20 };
  const fixes: Fix[] = [];
  if (!node.ok) fixes.push({ problem: `Node.js ${node.version} is older than this tool supports`, fix: 'use Node.js 20 or later' });

  const probes = await probeNative();
  const flavours = probes.map((p) => {
    const row: DoctorReport['flavours'][number] = { name: p.flavour, installed: p.installed, loads: p.loaded };
    if (p.installed && !p.loaded) {
      const d = diagnose(p.error ?? '');
      row.error = keyLine(p.error ?? '');
      row.problem = d.problem;
      row.fix = d.fix;
      fixes.push(d);
    }
    return row;
  });

  let auto: DoctorReport['auto'];
  let info: BackendInfo | null = null;
  try {
    info = await initBackend('auto');
    auto = { backend: info.name, gpu: info.gpu, line: info.line };
  } catch (e) {
    auto = { error: (e as Error).message };
  }

  const libraries = findLibraries(CUDA_LIBS, ldconfig(), process.env.LD_LIBRARY_PATH);
  const driver = nvidiaDriver();
  const gpuBackend = info?.gpu ?? false;
  if (!gpuBackend) {
    if (!probes[0]!.installed) fixes.push({ problem: 'no GPU backend: @tensorflow/tfjs-node-gpu is not installed', fix: INSTALL_HINT });
    else if (probes[0]!.loaded) {
      const missing = CUDA_LIBS.filter((l) => libraries[l] === null);
      if (driver === null) fixes.push({ problem: 'no NVIDIA driver (nvidia-smi not found)', fix: 'install the NVIDIA driver; TensorFlow then runs on the GPU' });
      for (const lib of missing.slice(0, 1)) fixes.push(diagnose(`${lib}: cannot open shared object file`));
    }
  }
  return {
    node,
    flavours,
    auto,
    libraries,
    ldLibraryPath: process.env.LD_LIBRARY_PATH ?? null,
    driver,
    canTrain: info !== null,
    gpuBackend,
    fixes: dedupe(fixes),
  };
}

function dedupe(fixes: Fix[]): Fix[] {
  const seen = new Set<string>();
  return fixes.filter((f) => (seen.has(f.problem) ? false : (seen.add(f.problem), true)));
}

export async function runDoctor(flags: DoctorFlags): Promise<DoctorReport> {
  const r = await doctorReport();
  if (flags.json) process.stdout.write(JSON.stringify(r) + '\n');
  else process.stdout.write(doctorText(r) + '\n');
  if (!r.canTrain) throw new AlexnetError('BACKEND', 'no backend can train here', 'follow the fixes above');
  if (flags.requireGpu && !r.gpuBackend) {
    throw new AlexnetError('NO_GPU', 'no GPU backend works here', r.fixes[0]?.fix ?? INSTALL_HINT);
  }
  return r;
}

export function doctorText(r: DoctorReport): string {
  const ok = (b: boolean) => (b ? 'ok  ' : 'FAIL');
  const lines = [
    `${ok(r.node.ok)} Node.js ${r.node.version}, N-API ${r.node.napi} (tfjs-node-gpu 4.22.0 ships N-API ${NAPI_BUILDS[0]}..${NAPI_BUILDS[NAPI_BUILDS.length - 1]} addons)`,
    ...r.flavours.map((f) => `${f.loads ? 'ok  ' : '--  '} ${f.name}: ${!f.installed ? 'not installed' : f.loads ? 'installed, loads' : `installed, does not load: ${f.error}`}`),
    'auto' in r && 'error' in r.auto ? `FAIL auto backend: ${r.auto.error}` : `ok   auto backend: ${(r.auto as { line: string }).line.replace(/^backend: /, '')}`,
    `${r.gpuBackend ? 'ok  ' : '--  '} GPU backend: ${r.gpuBackend ? 'yes' : 'no'}`,
    `     NVIDIA driver: ${r.driver ? `${r.driver.version} (${r.driver.gpus.join(', ')})` : 'not found (no nvidia-smi)'}`,
    '     CUDA 11.2 / cuDNN 8.1 libraries (ldconfig -p, LD_LIBRARY_PATH):',
    ...Object.entries(r.libraries).map(([lib, where]) => `       ${lib.padEnd(20)} ${where ?? 'missing'}`),
  ];
  if (r.fixes.length > 0) {
    lines.push('', 'fixes:');
    for (const f of r.fixes) lines.push(`  - ${f.problem}`, `    fix: ${f.fix}`);
  }
  lines.push('', r.canTrain ? `can train: yes, on ${'backend' in r.auto ? r.auto.backend : '?'}` : 'can train: no');
  return lines.join('\n');
}
