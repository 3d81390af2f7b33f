// The started backend's way to release its device, kept apart from ./index.ts so that the CLI can call it on
// the way out without loading TensorFlow.js (which `--help` and `download` never need).

let closer: (() => Promise<void>) | null = null;

/** Called by ./index.ts when a backend starts. */
export function setCloser(fn: () => Promise<void>): void {
  closer = fn;
}

/**
 * Waits for queued device work and releases the device. A Dawn instance still referenced keeps Node.js
 * running, and `process.exit` with GPU work queued segfaulted 2 times in 37 on a software adapter (issue #11).
 */
export async function closeBackend(): Promise<void> {
  const fn = closer;
  closer = null;
  await fn?.();
}
