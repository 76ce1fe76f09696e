// Progress of long commands: a bar with files, bytes, rate and ETA on a terminal; a plain
// line per phase (and every few seconds) otherwise; nothing with --json, whose output is
// the final result alone.
import cliProgress from 'cli-progress';

export interface ProgressUpdate {
  phase: string;
  files: number;
  bytes: number;
  totalFiles?: number;
  totalBytes?: number;
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i === 0 ? n : n.toFixed(1)} ${units[i]}`;
}

export class ProgressReporter {
  private bar: cliProgress.SingleBar | undefined;
  private phase = '';
  private lastLine = 0;
  private phaseStarted = Date.now();

  constructor(
    private readonly mode: 'bar' | 'lines' | 'none',
    private readonly out: NodeJS.WriteStream = process.stderr,
  ) {}

  static for(json: boolean, out: NodeJS.WriteStream = process.stderr): ProgressReporter {
    return new ProgressReporter(json ? 'none' : out.isTTY ? 'bar' : 'lines', out);
  }

  update = (p: ProgressUpdate): void => {
    if (this.mode === 'none') return;
    const phaseChanged = p.phase !== this.phase;
    this.phase = p.phase;
    if (this.mode === 'lines') {
      const now = Date.now();
      if (phaseChanged || now - this.lastLine > 5000) {
        this.lastLine = now;
        const of = p.totalFiles !== undefined ? ` of ${p.totalFiles}` : '';
        this.out.write(`${p.phase}: ${p.files}${of} files, ${formatBytes(p.bytes)}${p.totalBytes !== undefined ? ` of ${formatBytes(p.totalBytes)}` : ''}\n`);
      }
      return;
    }
    // Counted in bytes when their total is known, else in files (a walk that has not stat'ed them).
    const total = p.totalBytes ?? p.totalFiles;
    if (total === undefined) {
      if (phaseChanged) {
        this.stopBar();
        this.out.write(`${p.phase}…\n`);
      }
      return;
    }
    if (phaseChanged) this.stopBar();
    if (!this.bar) {
      this.bar = new cliProgress.SingleBar(
        {
          format: ' {phase} [{bar}] {percentage}% | {files}/{totalFiles} files | {done}{ofTotal} | {rate}/s | ETA {eta_formatted}',
          stream: this.out,
          hideCursor: true,
          etaBuffer: 50,
        },
        cliProgress.Presets.shades_classic,
      );
      this.bar.start(Math.max(total, 1), 0);
      this.phaseStarted = Date.now();
    }
    const secs = Math.max((Date.now() - this.phaseStarted) / 1000, 0.001);
    this.bar.setTotal(Math.max(total, 1));
    this.bar.update(p.totalBytes !== undefined ? p.bytes : p.files, {
      phase: p.phase,
      files: p.files,
      totalFiles: p.totalFiles ?? '?',
      done: formatBytes(p.bytes),
      ofTotal: p.totalBytes !== undefined ? ` of ${formatBytes(p.totalBytes)}` : '',
      rate: formatBytes(p.bytes / secs),
    });
  };

  private stopBar(): void {
    this.bar?.stop();
    this.bar = undefined;
  }

  done(): void {
    this.stopBar();
  }
}
