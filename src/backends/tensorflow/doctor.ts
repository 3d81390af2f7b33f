// What `alexnet doctor` checks for the native backend, and the pure mapping from what it finds (a load error, a missing library)
// to the fix. The messages quoted in the table are the real ones from the issues cited.

import { execFileSync } from 'node:child_process';
import type { Fix } from '../types.js';

/** The libraries libtensorflow 2.9.1 (tfjs-node-gpu 4.22.0) opens for CUDA 11.2 + cuDNN 8.1. */
export const CUDA_LIBS = ['libcudart.so.11.0', 'libcublas.so.11', 'libcublasLt.so.11', 'libcufft.so.10', 'libcurand.so.10', 'libcusolver.so.11', 'libcusparse.so.11', 'libcudnn.so.8'];

const CUDA_FIX = 'install the CUDA 11.2 runtime (libcudart, libcublas, libcufft, libcurand, libcusolver, libcusparse) beside a CUDA 12 driver, and add its lib64 to LD_LIBRARY_PATH (see README "GPU")';

/** Known failures (pattern over the error text or the missing library) and their fixes, first match wins. */
export const FIX_TABLE: { pattern: RegExp; problem: string; fix: string }[] = [
  {
    pattern: /GLIBC_\d+\.\d+'? not found/,
    problem: 'the system C library is older than libtensorflow needs',
    fix: 'use a newer Linux (glibc >= 2.27, e.g. Ubuntu 18.04 or Debian 10 and later), or the wasm backend',
  },
  {
    // tensorflow/tfjs#8362, #8505: a CUDA-12-only host
    pattern: /libcudart\.so\.11\.0|libcublas(Lt)?\.so\.11|libcufft\.so\.10|libcurand\.so\.10|libcusolver\.so\.11|libcusparse\.so\.11/,
    problem: 'the CUDA 11 libraries that libtensorflow 2.9.1 needs are missing (a CUDA-12-only host?)',
    fix: CUDA_FIX,
  },
  {
    pattern: /libcudnn(_\w+)?\.so\.8/,
    problem: 'cuDNN 8 is missing',
    fix: 'install cuDNN 8.1 for CUDA 11.2 (libcudnn8) and add its folder to LD_LIBRARY_PATH',
  },
  {
    // tensorflow/tfjs#8742, #5200, #3622: the install script downloaded an error page instead of a tarball
    pattern: /TAR_BAD_ARCHIVE|Unrecognized archive format|invalid tar/i,
    problem: 'the install script downloaded something that is not libtensorflow (a proxy or error page)',
    fix: 'install offline or through a mirror: set TFJS_NODE_CDN_STORAGE (or TFJS_NODE_BASE_URI) to a reachable copy, then `npm rebuild @tensorflow/tfjs-node-gpu` (see README "GPU")',
  },
  {
    pattern: /libtensorflow(_framework)?\.so\.2: cannot open|tensorflow\.dll/,
    problem: 'libtensorflow was not installed (the install script could not download it)',
    fix: 'run `npm rebuild @tensorflow/tfjs-node-gpu` where the network reaches storage.googleapis.com, or set TFJS_NODE_CDN_STORAGE to a mirror (see README "GPU")',
  },
  {
    pattern: /tfjs_binding\.node/,
    problem: 'the native addon (tfjs_binding.node) is missing or was built for another Node.js',
    fix: 'run `npm rebuild @tensorflow/tfjs-node-gpu` (it downloads or builds the addon for this Node.js)',
  },
  {
    pattern: /Cannot find (module|package) '@tensorflow\/tfjs-node(-gpu)?'|ERR_MODULE_NOT_FOUND/,
    problem: 'the package is not installed',
    fix: 'npm install @tensorflow/tfjs-node-gpu@4.22.0 (GPU, Linux) or @tensorflow/tfjs-node@4.22.0 (CPU)',
  },
];

/** The fix for a load error's text, or a generic one. */
export function diagnose(errorText: string): Fix {
  for (const row of FIX_TABLE) if (row.pattern.test(errorText)) return { problem: row.problem, fix: row.fix };
  return { problem: 'the native backend does not load', fix: 'see the error above; `npm rebuild @tensorflow/tfjs-node-gpu` often helps' };
}

export interface Driver {
  version: string;
  gpus: string[];
}

export function nvidiaDriver(): Driver | null {
  try {
    const out = execFileSync('nvidia-smi', ['--query-gpu=name,driver_version', '--format=csv,noheader'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 10_000 });
    const rows = out.trim().split('\n').filter(Boolean).map((l) => l.split(',').map((s) => s.trim()));
    return rows.length ? { version: rows[0]![1] ?? '?', gpus: rows.map((r) => r[0]!) } : null;
  } catch {
    return null;
  }
}

/** tfjs-node-gpu 4.22.0's package.json: `binary.napi_versions: [3, 4, 5, 6, 7, 8]` (npm view). */
export const NAPI_BUILDS = [3, 4, 5, 6, 7, 8];
