// Where the dynamic loader would find a shared library (Linux): what both the tensorflow backend (CUDA and cuDNN)
// and the webgpu backend (the Vulkan loader) check before they load anything, and report in `alexnet doctor`.

import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import * as path from 'node:path';

/** Where the dynamic loader would find each library: `ldconfig -p`, then LD_LIBRARY_PATH. */
export function findLibraries(names: string[], ldconfigOutput: string | null, ldLibraryPath: string | undefined): Record<string, string | null> {
  const found: Record<string, string | null> = {};
  for (const name of names) {
    const line = ldconfigOutput?.split('\n').find((l) => l.trim().startsWith(name + ' '));
    let where: string | null = line ? line.split('=>').pop()!.trim() : null;
    if (where === null) {
      for (const dir of (ldLibraryPath ?? '').split(':').filter(Boolean)) {
        if (existsSync(path.join(dir, name))) {
          where = path.join(dir, name);
          break;
        }
      }
    }
    found[name] = where;
  }
  return found;
}

/** `ldconfig -p`'s list of the libraries the loader knows, or null where there is no ldconfig (macOS, Windows). */
export function ldconfig(): string | null {
  for (const bin of ['ldconfig', '/sbin/ldconfig', '/usr/sbin/ldconfig']) {
    try {
      return execFileSync(bin, ['-p'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 5000 });
    } catch {
      // try the next place
    }
  }
  return null;
}

