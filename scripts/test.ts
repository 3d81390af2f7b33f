// `npm test`: Node's test runner over dist/test/*.test.js (helpers are not test files), two files at a time.
// Where scripts/software-vulkan.sh has unpacked a software Vulkan adapter, the tests see it through
// VK_ICD_FILENAMES and LD_LIBRARY_PATH (read by the dynamic loader at start-up, so they are set here, for
// the test processes, not by the tests themselves); the WebGPU tests skip, saying why, where there is none.
// Arguments are passed on to `node --test` (e.g. --test-name-pattern).

import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const dir = process.env.ALEXNET_SOFTWARE_VULKAN_DIR ?? path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'alexnet-software-vulkan');
const icd = path.join(dir, 'root', 'usr', 'share', 'vulkan', 'icd.d', 'lvp_icd.json');
const env = { ...process.env };
if (!env.VK_ICD_FILENAMES && !env.VK_DRIVER_FILES && existsSync(icd)) {
  env.VK_ICD_FILENAMES = icd;
  env.LD_LIBRARY_PATH = [path.join(dir, 'root', 'usr', 'lib', 'x86_64-linux-gnu'), env.LD_LIBRARY_PATH].filter(Boolean).join(':');
  process.stderr.write(`test: WebGPU tests on the software adapter in ${dir}\n`);
} else if (!env.VK_ICD_FILENAMES && !env.VK_DRIVER_FILES) {
  process.stderr.write(`test: no software Vulkan adapter in ${dir} (bash scripts/software-vulkan.sh makes one); WebGPU tests use what this machine has\n`);
}
const testDir = path.join(ROOT, 'dist', 'test');
// The longest files first, so that two at a time finish together rather than one long file running alone at the
// end (each file's suites summed from a CI run, two files at a time, 2026-12-07 on 2 cores: hardening 111 s,
// runs 59, train 59, newcomer 55, invariant 55, webgpu 53, datasets 49, faults 44, use 26, export 19, the rest
// under 15).
const LONGEST = ['hardening', 'runs', 'train', 'newcomer', 'invariant', 'webgpu', 'datasets', 'faults', 'use', 'export'].map((n) => `${n}.test.js`);
const rank = (f: string) => (LONGEST.includes(f) ? LONGEST.indexOf(f) : LONGEST.length);
const files = readdirSync(testDir).filter((f) => f.endsWith('.test.js')).sort().sort((a, b) => rank(a) - rank(b)).map((f) => path.join(testDir, f));
const r = spawnSync(process.execPath, ['--test', '--test-concurrency=2', ...process.argv.slice(2), ...files], { env, stdio: 'inherit' });
process.exitCode = r.status ?? 1;
