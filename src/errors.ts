// One error type for everything a user can get wrong or run into: a stable code for scripts, a one-line
// message, and a hint that names the next step. Only `handleError` in cli.ts prints it (STYLE.md #9).

export type ErrorCode =
  | 'USAGE' // a flag or argument is invalid
  | 'NETWORK' // the download failed after its retries
  | 'HTTP' // the server answered with a 4xx
  | 'CHECKSUM' // the archive's MD5 differs from the expected one
  | 'ARCHIVE' // the archive is not a CIFAR-10 binary archive, or is unsafe
  | 'DATA' // the data on disk is missing or malformed
  | 'BACKEND' // a TensorFlow.js backend cannot be loaded or used
  | 'NO_GPU' // a GPU was required and none works
  | 'DIVERGED' // training produced a NaN or infinite loss
  | 'CHECKPOINT' // a checkpoint or saved model cannot be read or written
  | 'IMAGE' // an image given to `predict` cannot be read
  | 'INTERRUPTED' // SIGINT/SIGTERM
  | 'LOCKED' // another run holds the data dir or checkpoint dir
  | 'PIPE' // stdout was closed by its reader (`| head`): stop quietly, as Unix tools do
  | 'IO'; // a file system error

/** Exit codes: 2 for usage (as commander does), 130 for an interrupt (128 + SIGINT), 3 for no GPU. */
export const EXIT_CODES: Record<ErrorCode, number> = {
  USAGE: 2,
  NETWORK: 1,
  HTTP: 1,
  CHECKSUM: 1,
  ARCHIVE: 1,
  DATA: 1,
  BACKEND: 1,
  NO_GPU: 3,
  DIVERGED: 1,
  CHECKPOINT: 1,
  IMAGE: 1,
  INTERRUPTED: 130,
  LOCKED: 1,
  PIPE: 141, // 128 + SIGPIPE, what a shell reports for a Unix tool stopped by a closed pipe
  IO: 1,
};

export class AlexnetError extends Error {
  readonly code: ErrorCode;
  readonly hint: string | undefined;

  constructor(code: ErrorCode, message: string, hint?: string) {
    super(message);
    this.name = 'AlexnetError';
    this.code = code;
    this.hint = hint;
  }

  get exitCode(): number {
    return EXIT_CODES[this.code];
  }
}

export function isAlexnetError(e: unknown): e is AlexnetError {
  return e instanceof AlexnetError;
}
