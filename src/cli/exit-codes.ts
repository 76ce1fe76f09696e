// Exit codes of the shadowcopy command (documented in docs/cli.md).
export const EXIT = {
  OK: 0,
  /** The operation failed; the message names the VSS error. */
  FAILED: 1,
  /** The command line was wrong. */
  USAGE: 2,
  /** Completed, but some components failed (--best-effort), or some files could not be restored. */
  PARTIAL: 3,
  /** Interrupted (Ctrl-C): nothing was left looking complete. */
  INTERRUPTED: 130,
} as const;
