// shadowcopy daemon [--socket-dir DIR] [--state-dir DIR] [--config-dir DIR]: the coordinator
// service. Logs are JSON lines on stderr (pino). SIGTERM/SIGINT end every session cleanly.
import type { Command } from 'commander';
import pino from 'pino';
import { recoverRestores } from '../../backup/restore-executor.js';
import { Daemon, DEFAULT_CONFIG_DIR } from '../../coordinator/daemon.js';
import { socketDir } from '../../protocol/client.js';
import { stateDir } from '../coordinator-options.js';

export function registerDaemon(program: Command): void {
  program
    .command('daemon')
    .description('Run the coordinator: writers connect to writer.sock, requesters to requester.sock')
    .option('--socket-dir <dir>', 'directory for requester.sock and writer.sock (default $SHADOWCOPY_SOCKET_DIR or /run/shadowcopy)')
    .option('--state-dir <dir>', 'snapshot registry and session timelines (default $SHADOWCOPY_STATE_DIR or /var/lib/shadowcopy)')
    .option('--config-dir <dir>', `daemon.json (timeouts) and built-in writer configuration (default ${DEFAULT_CONFIG_DIR})`)
    .option('--freeze-timeout-ms <ms>', 'default Freeze→Thaw window for writers that give none (60000)', (v) => Number(v))
    .option('--commit-window-ms <ms>', 'provider commit window (10000)', (v) => Number(v))
    .option('--log-level <level>', 'trace, debug, info, warn, error', 'info')
    .action(async (opts: { socketDir?: string; stateDir?: string; configDir?: string; freezeTimeoutMs?: number; commitWindowMs?: number; logLevel: string }) => {
      const logger = pino({ name: 'shadowcopy', level: opts.logLevel }, pino.destination({ fd: 2, sync: true }));
      // A restore killed half-way is put back whole (all old) before anything else runs.
      const recovered = recoverRestores(stateDir(opts.stateDir));
      if (recovered.rolledBack.length || recovered.completed.length) logger.warn(recovered, 'finished interrupted restores');
      const daemon = await Daemon.start({
        socketDir: socketDir(opts.socketDir),
        stateDir: stateDir(opts.stateDir),
        configDir: opts.configDir ?? DEFAULT_CONFIG_DIR,
        timeouts: {
          ...(opts.freezeTimeoutMs ? { freezeWindowMs: opts.freezeTimeoutMs } : {}),
          ...(opts.commitWindowMs ? { commitWindowMs: opts.commitWindowMs } : {}),
        },
        log: (level, msg, fields) => logger[level](fields ?? {}, msg),
      });
      await new Promise<void>((resolve) => {
        const stop = (sig: string): void => {
          logger.info({ signal: sig }, 'stopping');
          void daemon.stop().finally(resolve);
        };
        process.once('SIGTERM', () => stop('SIGTERM'));
        process.once('SIGINT', () => stop('SIGINT'));
      });
    });
}
