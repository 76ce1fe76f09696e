// shadowcopy test-writer --config FILE [--log FILE] [--socket-dir DIR]: the VSS Test Writer
// (src/testing/test-writer.ts) as a process, for tests and for trying a daemon by hand.
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { TestWriter } from '../../testing/test-writer.js';
import { VssError } from '../../vss/index.js';

export function registerTestWriter(program: Command): void {
  program
    .command('test-writer')
    .description('Run a configurable writer that logs every event as JSON lines and can veto, fail, hang or exit at any event')
    .requiredOption('--config <file>', 'the writer\'s JSON configuration (see docs/sdk.md)')
    .option('--log <file>', 'append one JSON line per event here (default: stdout)')
    .option('--socket-dir <dir>', 'the daemon\'s socket directory (default $SHADOWCOPY_SOCKET_DIR or /run/shadowcopy)')
    .action(async (opts: { config: string; log?: string; socketDir?: string }) => {
      let json: unknown;
      try {
        json = JSON.parse(readFileSync(opts.config, 'utf8'));
      } catch (e) {
        throw new VssError('E_INVALIDARG', `cannot read the test writer config ${opts.config}: ${(e as Error).message}`);
      }
      const w = new TestWriter(json as never, {
        ...(opts.log ? { logFile: opts.log } : { onLine: (l) => process.stdout.write(`${JSON.stringify(l)}\n`) }),
      });
      w.on('subscribed', (id) => process.stderr.write(`test-writer: subscribed as instance ${String(id)}\n`));
      w.on('disconnected', () => process.stderr.write('test-writer: daemon gone, reconnecting\n'));
      await w.subscribe({ ...(opts.socketDir ? { socketDir: opts.socketDir } : {}) });
      await new Promise<void>((resolve) => {
        const stop = (): void => void w.unsubscribe().finally(resolve);
        process.once('SIGTERM', stop);
        process.once('SIGINT', stop);
      });
    });
}
