// `npm run demo`: an application-consistent backup and restore, end to end, with no daemon
// and no setup.
//
// A small "ledger" application moves money between accounts all the time. Each transfer
// rewrites accounts.json and appends a line to journal.log: a copy taken between the two
// writes is inconsistent (the journal and the balances disagree). Its writer quiesces it
// at Freeze and lets it go at Thaw, so the snapshot catches both files at one transfer.
// An in-process coordinator drives the VSS sequence; the copy provider snapshots a
// private tmpfs volume; the backup goes to a directory, is restored to another, and is
// verified against its checksums and the ledger's own rule. Then the session's timeline.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BackupDir } from '../src/backup/backup-dir.js';
import { runBackup } from '../src/backup/run-backup.js';
import { runRestore } from '../src/backup/run-restore.js';
import { formatTrace } from '../src/cli/trace-format.js';
import { Coordinator } from '../src/coordinator/index.js';
import { SnapshotManager } from '../src/providers/index.js';
import { AdminClient, BackupComponents } from '../src/requester/index.js';
import { ComponentType, RestoreMethod, SourceType, UsageType, WriterRestore, type WriterMetadataBuilder } from '../src/vss/index.js';
import { Writer } from '../src/writer/index.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const say = (s = ''): void => void process.stdout.write(`${s}\n`);

/** Two files that must agree: the balances (with the number of transfers applied) and the journal. */
class Ledger {
  private timer: NodeJS.Timeout | undefined;
  private paused = false;
  transfers = 0;
  readonly accounts: Record<string, number> = { alice: 500_000, bob: 300_000, carol: 200_000 };

  constructor(readonly dir: string) {
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'journal.log'), '');
    this.save();
  }

  private save(): void {
    writeFileSync(join(this.dir, 'accounts.json'), JSON.stringify({ transfers: this.transfers, accounts: this.accounts }));
  }

  private transfer(): void {
    const names = Object.keys(this.accounts);
    const from = names[this.transfers % names.length]!;
    const to = names[(this.transfers + 1) % names.length]!;
    const amount = 1 + (this.transfers % 97);
    this.accounts[from]! -= amount;
    this.accounts[to]! += amount;
    this.transfers++;
    // Two separate writes: between them the files disagree.
    appendFileSync(join(this.dir, 'journal.log'), `${this.transfers} ${from} ${to} ${amount}\n`);
    this.save();
  }

  start(): void {
    this.timer = setInterval(() => {
      if (!this.paused) for (let i = 0; i < 20; i++) this.transfer();
    }, 1);
  }
  pause(): void {
    this.paused = true; // transfers run on this thread: none is half done now
  }
  resume(): void {
    this.paused = false;
  }
  stop(): void {
    clearInterval(this.timer);
  }
}

/** The rule the restored copy must keep: as many journal lines as transfers, and no money made or lost. */
function checkLedger(dir: string): string {
  const { transfers, accounts } = JSON.parse(readFileSync(join(dir, 'accounts.json'), 'utf8')) as { transfers: number; accounts: Record<string, number> };
  const lines = readFileSync(join(dir, 'journal.log'), 'utf8').split('\n').filter(Boolean).length;
  const total = Object.values(accounts).reduce((a, b) => a + b, 0);
  if (lines !== transfers || total !== 1_000_000) {
    throw new Error(`the restored ledger is inconsistent: ${transfers} transfers in accounts.json, ${lines} in journal.log, total ${total}`);
  }
  return `${transfers} transfers in accounts.json and ${lines} in journal.log; the total is still 1,000,000`;
}

class LedgerWriter extends Writer {
  constructor(private readonly ledger: Ledger) {
    super({ writerId: '7c2b9a3e-51f4-4d6a-8e0b-3f1a2c4d5e6f', writerName: 'Demo Ledger', usage: UsageType.USERDATA, sourceType: SourceType.OTHER });
  }
  override onIdentify(m: WriterMetadataBuilder): void {
    m.setRestoreMethod(RestoreMethod.RESTORE_IF_CAN_REPLACE, undefined, undefined, WriterRestore.NEVER, false);
    m.addComponent({ type: ComponentType.FILEGROUP, componentName: 'ledger', caption: 'Balances and journal', selectable: true });
    m.addFilesToFileGroup('', 'ledger', this.ledger.dir, '*', true);
  }
  override onFreeze(): boolean {
    this.ledger.pause();
    return true;
  }
  override onThaw(): boolean {
    this.ledger.resume();
    return true;
  }
  override onAbort(): boolean {
    this.ledger.resume();
    return true;
  }
}

function sha256(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) {
    say('The demo snapshots a private tmpfs volume, and mounting one needs root. Run it as root (sudo npm run demo).');
    process.exitCode = 1;
    return;
  }
  const work = mkdtempSync(join(tmpdir(), 'shadowcopy-demo-'));
  const volume = join(work, 'volume');
  mkdirSync(volume);
  const mount = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64m', 'shadowcopy-demo', volume], { encoding: 'utf8' });
  if (mount.status !== 0) throw new Error(`mount -t tmpfs failed: ${mount.stderr}`);
  const stateDir = join(work, 'state');
  const ledger = new Ledger(join(volume, 'ledger'));
  writeFileSync(join(volume, 'README.txt'), 'Files beside the ledger: backed up crash-consistently.\n');
  const snapshots = await SnapshotManager.open({ stateDir });
  const co = new Coordinator({ snapshots, stateDir });
  const writer = new LedgerWriter(ledger);
  try {
    say('shadowcopy demo: an application-consistent backup of a running application');
    say(`  volume  ${volume} (tmpfs, copy provider)`);
    await writer.subscribe({ stream: () => co.connectWriter(), reconnect: false });
    ledger.start();
    await new Promise((r) => setTimeout(r, 300));
    say(`  the ledger application is running: ${ledger.transfers} transfers so far, and counting`);

    say('\n1. Backup (in-process coordinator, writer "Demo Ledger" takes part)');
    const backupDir = join(work, 'backup');
    const session = await BackupComponents.create({ stream: () => co.connectRequester(), client: 'demo' });
    let lastPhase = '';
    const report = await runBackup(session, {
      to: backupDir,
      paths: [volume],
      writerVerify: ['Demo Ledger'],
      onProgress: (p) => {
        if (p.phase !== lastPhase) say(`   ${(lastPhase = p.phase)}`);
      },
    });
    await session.release();
    const admin = await AdminClient.connect({ stream: () => co.connectRequester(), client: 'demo' });
    const trace = await admin.trace(report.snapshotSetId);
    writeFileSync(join(backupDir, 'trace.json'), JSON.stringify(trace, null, 1));
    admin.close();
    const t = report.manifest.totals;
    say(`   backup ${report.manifest.id} in ${backupDir}`);
    say(`   ${t.files} entries, ${t.bytes} bytes; components: ${report.components.map((c) => `${c.component} ${c.succeeded ? 'ok' : 'FAILED'}`).join(', ')}`);
    await new Promise((r) => setTimeout(r, 200));
    say(`   the application kept running: ${ledger.transfers} transfers by now`);

    say('\n2. Restore into another directory');
    const restored = join(work, 'restored');
    const rr = await runRestore({ from: backupDir, to: restored, stateDir });
    for (const s of rr.steps) for (const r of s.results) say(`   ${r.plan.definingComponent.fullPath}: ${r.filesRestored} entries, ${r.bytesRestored} bytes (${r.placement})`);
    if (rr.files) say(`   crash-consistent files: ${rr.files.filesRestored} entries`);

    say('\n3. Verification');
    const b = BackupDir.open(backupDir);
    let matched = 0;
    for (const f of b.manifest.files.filter((x) => x.kind === 'file')) {
      const copy = join(restored, f.path);
      if (!existsSync(copy) || sha256(copy) !== f.sha256) throw new Error(`${copy} does not match the backup`);
      matched++;
    }
    say(`   ${matched} of ${matched} restored files match their sha256 in manifest.json`);
    say(`   ledger: ${checkLedger(join(restored, ledger.dir))}`);

    say('\n4. The session timeline (shadowcopy trace)');
    say(formatTrace(trace).split('\n').map((l) => `   ${l}`).join('\n'));

    say('\n5. The saved Backup Components Document (shadowcopy inspect)');
    const r = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'src', 'cli', 'main.ts'), 'inspect', join(backupDir, 'backup-components.xml')], { encoding: 'utf8' });
    say(r.stdout.trimEnd().split('\n').map((l) => `   ${l}`).join('\n'));
    say(`\nEverything is in ${work} (backup/, restored/); the volume is unmounted.`);
  } finally {
    ledger.stop();
    await writer.unsubscribe();
    await co.shutdown();
    if (spawnSync('umount', [volume]).status !== 0) spawnSync('umount', ['-l', volume]);
    rmSync(volume, { recursive: true, force: true });
  }
}

await main();
