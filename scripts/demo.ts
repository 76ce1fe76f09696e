// `npm run demo`: what shadowcopy does today, end to end, in a scratch directory.
// 1. A writer describes its data: build a Writer Metadata Document with the SDK builder.
// 2. Save it in the genuine Windows XML format and inspect it with the CLI.
// 3. A requester records a backup: a Backup Components Document, saved and inspected.
// 4. A genuine Windows document (if ../shared is present) is read, inspected and
//    reproduced byte for byte.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  BackupComponentsDocument,
  BackupSchema,
  BackupType,
  ComponentType,
  Guid,
  parseBackupComponents,
  RestoreMethod,
  SourceType,
  UsageType,
  WriterMetadataBuilder,
  WriterRestore,
  writeBackupComponents,
  writeWriterMetadata,
} from '../src/vss/index.js';
import { fixture } from '../test/support/fixtures.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const out = mkdtempSync(join(tmpdir(), 'shadowcopy-demo-'));

function shadowcopy(...args: string[]): void {
  console.log(`\n$ shadowcopy ${args.join(' ')}`);
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'src', 'cli', 'main.ts'), ...args], { stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
}

console.log('1. A writer describes its data (WriterMetadataBuilder, like IVssCreateWriterMetadata)');
const wmd = new WriterMetadataBuilder({
  writerId: '5f1e0b3a-7c2d-4e8f-9a1b-2c3d4e5f6a7b',
  writerName: 'Demo Orders Writer',
  usage: UsageType.USERDATA,
  source: SourceType.TRANSACTEDDB,
})
  .setBackupSchema(BackupSchema.DIFFERENTIAL | BackupSchema.INCREMENTAL | BackupSchema.TIMESTAMPED)
  .setRestoreMethod(RestoreMethod.STOP_RESTORE_START, 'orders.service', undefined, WriterRestore.ALWAYS, false)
  .addComponent({ type: ComponentType.DATABASE, logicalPath: 'orders', componentName: 'main', caption: 'Orders database', selectable: true })
  .addDatabaseFiles('orders', 'main', '/srv/orders', 'orders.db')
  .addDatabaseLogFiles('orders', 'main', '/srv/orders', 'orders.db-wal')
  .addComponent({ type: ComponentType.FILEGROUP, logicalPath: 'orders\\main', componentName: 'attachments', selectable: false })
  .addFilesToFileGroup('orders\\main', 'attachments', '/srv/orders/attachments', '*', true)
  .addComponent({ type: ComponentType.FILEGROUP, componentName: 'config', selectable: false })
  .addFilesToFileGroup('', 'config', '/etc/orders', '*.conf', false)
  .addExcludeFiles('/srv/orders', '*.tmp', true)
  .build();
const wmdFile = join(out, 'writer-metadata.xml');
writeFileSync(wmdFile, writeWriterMetadata(wmd));
console.log(`   saved ${wmdFile}`);
shadowcopy('inspect', wmdFile);

console.log('\n2. A requester records what it backed up (Backup Components Document)');
const bcd = new BackupComponentsDocument();
bcd.setBackupState({ selectComponents: true, bootableSystemStateBackup: false, backupType: BackupType.FULL, partialFileSupport: false });
bcd.snapshotSetId = Guid.random();
const writer = bcd.writer(wmd.identity.writerId, wmd.identity.instanceId, '', wmd.backupSchema);
writer.addComponent(ComponentType.FILEGROUP, '', 'config').setBackupSucceeded(true);
const main = writer.addComponent(ComponentType.DATABASE, 'orders', 'main');
main.setBackupStamp('lsn:0/16B3748');
main.setBackupSucceeded(true);
const bcdFile = join(out, 'backup-components.xml');
writeFileSync(bcdFile, writeBackupComponents(bcd));
console.log(`   saved ${bcdFile}`);
shadowcopy('inspect', bcdFile);

const genuine = fixture('nosql-BCDocument');
if (genuine) {
  console.log('\n3. A genuine Windows Server document, read and written back');
  shadowcopy('inspect', genuine);
  const bytes = readFileSync(genuine, 'utf8');
  const same = writeBackupComponents(parseBackupComponents(bytes)) === bytes;
  console.log(`\n   written back byte for byte: ${same ? 'yes' : 'NO'}`);
  if (!same) process.exit(1);
} else {
  console.log('\n3. (skipped: the genuine Windows documents in ../shared/fixtures are not present)');
}
console.log(`\nDemo files are in ${out}`);
