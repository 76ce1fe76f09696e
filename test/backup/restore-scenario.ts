// A writer, a live directory, a backup of it and a restore set: the pieces the restore
// executor tests share. The "backup" is a real copy of the live tree, read through FsFileTree.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { FsFileTree } from '../../src/backup/fs-tree.js';
import type { RestoreSource } from '../../src/backup/restore-executor.js';
import {
  BackupComponentsDocument,
  BackupSchema,
  BackupSelection,
  ComponentType,
  computeBackupSet,
  computeRestoreSet,
  type RestoreSet,
  RestoreMethod,
  RestoreSelection,
  SourceType,
  UsageType,
  type WriterMetadata,
  WriterMetadataBuilder,
  WriterRestore,
  type BackupSetEntry,
} from '../../src/vss/index.js';

export const WRITER_ID = '0d7a3c1e-5b2f-4c8a-9e61-7f3b2a1c9d40';

export interface ScenarioOptions {
  method?: RestoreMethod;
  service?: string;
  /** Declare a writer mapping of the data file set to this directory (under the scenario root). */
  mappingTo?: string;
  files?: Record<string, string>;
  newTargetSupport?: boolean;
}

export class Scenario {
  readonly root = mkdtempSync(join(tmpdir(), 'shadowcopy-restore-'));
  readonly live = join(this.root, 'live');
  readonly snap = join(this.root, 'snap');
  readonly stateDir = join(this.root, 'state');
  readonly wmd: WriterMetadata;
  readonly bcd = new BackupComponentsDocument();
  readonly entries: readonly BackupSetEntry[];
  readonly tree: FsFileTree;
  readonly files: Record<string, string>;

  constructor(readonly options: ScenarioOptions = {}) {
    this.files = options.files ?? { 'data/a.db': 'alpha', 'data/sub/b.db': 'bravo', 'data/sub/c.log': 'charlie', 'conf/app.conf': 'setting=1' };
    for (const [rel, content] of Object.entries(this.files)) this.write(rel, content);
    mkdirSync(join(this.live, 'data', 'empty'), { recursive: true });
    execFileSync('cp', ['-a', this.live, this.snap]);
    const b = new WriterMetadataBuilder({ writerId: WRITER_ID, writerName: 'Restore Test Writer', usage: UsageType.USERDATA, source: SourceType.OTHER })
      .setRestoreMethod(options.method ?? RestoreMethod.RESTORE_IF_CAN_REPLACE, options.service, undefined, WriterRestore.ALWAYS, false)
      .addComponent({ type: ComponentType.FILEGROUP, componentName: 'data', selectable: true })
      .addFilesToFileGroup('', 'data', join(this.live, 'data'), '*', true)
      .addComponent({ type: ComponentType.FILEGROUP, componentName: 'conf', selectable: true })
      .addFilesToFileGroup('', 'conf', join(this.live, 'conf'), '*.conf', false);
    if (options.newTargetSupport) b.setBackupSchema(BackupSchema.WRITER_SUPPORTS_NEW_TARGET);
    if (options.mappingTo) b.addAlternateLocationMapping(join(this.live, 'data'), '*', true, join(this.root, options.mappingTo));
    this.wmd = b.build();
    const sel = new BackupSelection([this.wmd]);
    sel.addComponent({ writerId: WRITER_ID, componentName: 'data' });
    sel.addComponent({ writerId: WRITER_ID, componentName: 'conf' });
    sel.applyTo(this.bcd);
    this.tree = new FsFileTree([{ volume: this.live, snapshotRoot: this.snap }]);
    const set = computeBackupSet(sel.result(), this.tree);
    if (set.failures.length) throw set.failures[0]!.error;
    this.entries = set.entries;
  }

  write(rel: string, content: string, base = this.live): void {
    const p = join(base, rel);
    mkdirSync(dirname(p), { recursive: true });
    writeFileSync(p, content);
  }

  /** Selects components for restore (as a requester would before PreRestore). */
  select(names: string[], edit?: (r: RestoreSelection) => void): RestoreSelection {
    const r = new RestoreSelection(this.bcd, [this.wmd], [{ writerId: WRITER_ID }]);
    for (const n of names) r.setSelectedForRestore({ writerId: WRITER_ID, componentName: n });
    edit?.(r);
    r.close();
    return r;
  }

  restoreSet(): RestoreSet {
    return computeRestoreSet(this.bcd, [this.wmd], this.entries);
  }

  readonly source: RestoreSource = {
    contentPath: (e) => this.tree.resolve(e.source)!,
  };

  cleanup(): void {
    rmSync(this.root, { recursive: true, force: true });
  }
}
