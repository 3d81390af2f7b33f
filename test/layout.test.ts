// The code's layout, held (issue #26): imports only go down (no module imports one that imports it back, at run
// time), and inside the WebGPU wing each floor imports only the floors below it, with one compiled program a file.
// Read from the TypeScript sources, so it needs no build of its own.

import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { ROOT } from './helpers.js';

const SRC = path.join(ROOT, 'src');

/** Every .ts and .cts file under `dir`, relative to src/. */
function sources(dir = SRC): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sources(path.join(dir, e.name)) : /\.c?ts$/.test(e.name) ? [path.relative(SRC, path.join(dir, e.name))] : []));
}

/** The modules `file` (relative to src/) imports at run time (type-only imports aside), relative to src/. */
function imports(file: string): string[] {
  const text = fs.readFileSync(path.join(SRC, file), 'utf8');
  const specs = [...text.matchAll(/^import (?!type )[^;]*? from '(\.[^']+)';/gm), ...text.matchAll(/import\('(\.[^']+)'\)/g)].map((m) => m[1]!);
  return specs.map((s) => path.relative(SRC, path.resolve(path.dirname(path.join(SRC, file)), s)).replace(/\.js$/, '.ts').replace(/\.cjs$/, '.cts'));
}

test('no module imports one that imports it back (at run time)', () => {
  const graph = new Map(sources().map((f) => [f, imports(f)]));
  const cycles: string[] = [];
  const state = new Map<string, 'open' | 'done'>();
  const visit = (f: string, trail: string[]) => {
    state.set(f, 'open');
    for (const g of graph.get(f) ?? []) {
      if (state.get(g) === 'open') cycles.push([...trail.slice(trail.indexOf(g)), g].join(' -> '));
      else if (!state.has(g)) visit(g, [...trail, g]);
    }
    state.set(f, 'done');
  };
  for (const f of graph.keys()) if (!state.has(f)) visit(f, [f]);
  assert.deepEqual(cycles, []);
});

test('the WebGPU wing: each floor imports only the floors below it, and compiled programs are one a file', () => {
  const wing = 'backends/webgpu/';
  // Floors, bottom up; a module may import its own floor's files and any floor below.
  const floor = (f: string): number => {
    const p = f.slice(wing.length);
    if (p.startsWith('wgsl/') || ['errors.ts', 'options.ts', 'adapter.ts', 'package.cts'].includes(p)) return 0;
    if (p === 'compiled/program.ts' || p === 'compiled/plan.ts') return 1;
    if (p === 'compiled/conv_geometry.ts' || p.startsWith('ops/')) return 2;
    if (p.startsWith('compiled/kernels/')) return 3;
    if (p === 'compiled/graph.ts') return 4;
    if (p === 'compiled/runner.ts' || p === 'doctor.ts') return 5;
    if (p === 'index.ts') return 6;
    throw new Error(`${f}: no floor is known for it; add it here`);
  };
  const upward: string[] = [];
  for (const f of sources().filter((s) => s.startsWith(wing))) {
    for (const g of imports(f).filter((s) => s.startsWith(wing))) {
      const crossing = f.includes('/ops/') !== g.includes('/ops/') && floor(g) > 0 && floor(f) > 0 && !f.endsWith('index.ts');
      if (floor(g) > floor(f) || crossing) upward.push(`${f} -> ${g}`);
    }
  }
  assert.deepEqual(upward, [], 'imports that run up, or between the op-by-op and compiled runners');
  const kernels = sources().filter((s) => s.startsWith(`${wing}compiled/kernels/`));
  for (const k of kernels) {
    const programs = [...fs.readFileSync(path.join(SRC, k), 'utf8').matchAll(/^export class (\w+) (implements CompiledProgram|extends GemmProgram)/gm)].length;
    const bases = [...fs.readFileSync(path.join(SRC, k), 'utf8').matchAll(/^export abstract class /gm)].length;
    assert.ok(programs === 1 || (programs === 0 && bases === 1), `${k}: ${programs} programs`);
  }
});
