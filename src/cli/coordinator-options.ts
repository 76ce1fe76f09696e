// What every command that needs the coordinator shares: --socket-dir, --standalone, and the
// connection to the daemon (or to an in-process coordinator with no external writers).
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { Coordinator } from '../coordinator/index.js';
import { DEFAULT_STATE_DIR } from '../coordinator/daemon.js';
import { socketDir } from '../protocol/client.js';
import { SnapshotManager } from '../providers/index.js';
import { AdminClient, BackupComponents } from '../requester/index.js';

export interface CoordinatorCliOptions {
  socketDir?: string;
  standalone?: boolean;
  stateDir?: string;
}

export function addCoordinatorOptions(cmd: Command): Command {
  return cmd
    .option('--socket-dir <dir>', 'where the daemon\'s sockets are (default $SHADOWCOPY_SOCKET_DIR or /run/shadowcopy)')
    .option('--standalone', 'run an in-process coordinator instead of using the daemon (no external writers)')
    .option('--state-dir <dir>', 'with --standalone: where snapshots are registered (default $SHADOWCOPY_STATE_DIR, or /var/lib/shadowcopy as root, else ~/.local/state/shadowcopy)');
}

export function stateDir(explicit?: string): string {
  if (explicit) return explicit;
  if (process.env.SHADOWCOPY_STATE_DIR) return process.env.SHADOWCOPY_STATE_DIR;
  return process.getuid?.() === 0 ? DEFAULT_STATE_DIR : join(homedir(), '.local', 'state', 'shadowcopy');
}

/** A way to open requester sessions and admin clients, and to end it all. */
export interface CoordinatorAccess {
  backupComponents(): Promise<BackupComponents>;
  admin(): Promise<AdminClient>;
  close(): Promise<void>;
}

export async function coordinatorAccess(o: CoordinatorCliOptions): Promise<CoordinatorAccess> {
  if (o.standalone) {
    const dir = stateDir(o.stateDir);
    const snapshots = await SnapshotManager.open({ stateDir: dir });
    // Nothing else uses this registry while we run: whatever a crashed standalone run left goes.
    await snapshots.recover(new Set());
    const co = new Coordinator({ snapshots, stateDir: dir });
    return {
      backupComponents: () => BackupComponents.create({ stream: () => co.connectRequester(), client: 'shadowcopy --standalone' }),
      admin: () => AdminClient.connect({ stream: () => co.connectRequester(), client: 'shadowcopy --standalone' }),
      close: () => co.shutdown(),
    };
  }
  const dir = socketDir(o.socketDir);
  return {
    backupComponents: () => BackupComponents.create({ socketDir: dir, client: 'shadowcopy cli' }),
    admin: () => AdminClient.connect({ socketDir: dir, client: 'shadowcopy cli' }),
    close: async () => undefined,
  };
}
