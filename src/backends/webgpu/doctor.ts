// The WebGPU part of `alexnet doctor`: the package, the Vulkan loader and device nodes (Linux), each adapter Dawn
// offers and whether it is a software one, and how to get a hardware adapter on each platform.

import type { DoctorSection, Fix } from '../types.js';
import { NATIVE_API, forgetGpu, listAdapters, openGpu, packageVersion, preflight, type Adapter } from './adapter.js';

export const notInstalledHint = 'reinstall with `npm ci` (the `webgpu` package is a dependency)';

/** How to get a hardware adapter, per platform: the fix `doctor` and the errors give. */
export function adapterFix(problem: 'no-loader' | 'no-adapter' | 'software', env: NodeJS.ProcessEnv = process.env, platform = process.platform): string {
  if (platform === 'darwin') return 'WebGPU runs on Metal, which every Mac since 2012 has; update macOS, or use --backend wasm';
  if (platform === 'win32') return 'WebGPU runs on D3D12: install or update the GPU driver from its vendor, or use --backend wasm';
  if (problem === 'no-loader') return 'install the Vulkan loader (`apt-get install libvulkan1`, `dnf install vulkan-loader`) and your GPU\'s Vulkan driver';
  const caps = env.NVIDIA_DRIVER_CAPABILITIES;
  if (caps !== undefined && !/\b(all|graphics)\b/.test(caps)) {
    return `this container's NVIDIA_DRIVER_CAPABILITIES (${caps}) lacks graphics, so the NVIDIA Vulkan driver is not mounted: run it with NVIDIA_DRIVER_CAPABILITIES=compute,utility,graphics (or all)`;
  }
  return 'install the GPU\'s Vulkan driver: NVIDIA\'s driver package includes it (its ICD is nvidia_icd.json; containers need NVIDIA_DRIVER_CAPABILITIES with graphics), AMD and Intel use Mesa (`apt-get install mesa-vulkan-drivers`)';
}

export async function doctor(): Promise<DoctorSection> {
  const version = packageVersion();
  const pf = preflight();
  const fixes: Fix[] = [];
  const lines: string[] = [];
  const json: Record<string, unknown> = { package: version, api: NATIVE_API, loader: pf.loader, deviceNodes: pf.deviceNodes, adapters: [] };
  if (version === null) {
    fixes.push({ problem: 'the `webgpu` package is not installed', fix: notInstalledHint });
    lines.push('--   webgpu: not installed');
    return { title: 'WebGPU (Dawn)', lines, json, fixes };
  }
  lines.push(`ok   webgpu ${version} (Dawn; ${NATIVE_API})`);
  if (process.platform === 'linux') {
    lines.push(`${pf.loader ? 'ok  ' : '--  '} Vulkan loader: ${pf.loader ?? 'libvulkan.so.1 not found (ldconfig -p, LD_LIBRARY_PATH)'}`);
    lines.push(`     GPU device nodes: ${pf.deviceNodes!.length > 0 ? pf.deviceNodes!.join(', ') : 'none'}`);
  }
  if (pf.noAdapter) {
    fixes.push({ problem: `WebGPU: ${pf.noAdapter}`, fix: adapterFix('no-loader') });
    return { title: 'WebGPU (Dawn)', lines, json, fixes };
  }
  let adapters: Adapter[] = [];
  try {
    adapters = await listAdapters((await openGpu()).gpu);
  } catch (e) {
    lines.push(`FAIL dawn.node does not load: ${(e as Error).message.split('\n')[0]}`);
    fixes.push({ problem: 'dawn.node does not load', fix: notInstalledHint });
  } finally {
    forgetGpu();
  }
  json.adapters = adapters;
  for (const a of adapters) {
    lines.push(`${a.software ? '--  ' : 'ok  '} adapter: ${a.name} (vendor ${a.vendor || '?'}, device ${a.device || '?'}${a.description && a.description !== a.name ? `, driver ${a.description}` : ''})${a.software ? ': software, never chosen by auto' : ''}`);
  }
  if (adapters.length === 0) {
    lines.push(`--   adapters: none`);
    fixes.push({ problem: `WebGPU: no ${NATIVE_API} adapter`, fix: adapterFix('no-adapter') });
  } else if (adapters.every((a) => a.software)) {
    fixes.push({ problem: 'WebGPU: only a software adapter (no GPU driver for Vulkan)', fix: adapterFix('software') });
  }
  return { title: 'WebGPU (Dawn)', lines, json, fixes };
}
