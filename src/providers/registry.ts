// The snapshot registry: every snapshot the host knows of, in `<stateDir>/snapshots.json`.
// Each change rewrites the file durably (write a temporary file, fsync it, rename it over
// the old one, fsync the directory), so after a crash the file is either the old or the
// new version, never a torn one. A snapshot is recorded *before* anything is made on disk,
// so recovery can always find and remove a half-made one.
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { VssError } from '../vss/errors.js';
import { SnapshotState } from '../vss/enums.js';
import { PROVIDER_NAMES, type ProviderName } from '../vss/snapshot.js';
import { fsError, fsyncDir } from './system.js';

export const REGISTRY_FILE = 'snapshots.json';
const FORMAT_VERSION = 1;

/** One snapshot as the registry keeps it (JSON-safe: ids and times as strings). */
export interface SnapshotRecord {
  snapshotId: string;
  snapshotSetId: string;
  snapshotsCount: number;
  /** The snapshot device object: the directory with the snapshot's content. */
  snapshotPath: string;
  /** The volume's root (original volume name). */
  volumeRoot: string;
  /** The snapshot store's top directory, removed when it holds nothing more. */
  storeTop: string;
  provider: ProviderName;
  /** VSS_VOLUME_SNAPSHOT_ATTRIBUTES. */
  attributes: number;
  /** Session that made the snapshot: its end releases auto-release snapshots. */
  sessionId: string;
  originatingMachine: string;
  /** ISO 8601. */
  creationTimestamp: string;
  /** VSS_SS_CREATED once complete; anything else after a restart means half-made. */
  state: SnapshotState;
  /** Bind-mount target when exposed, else ''. */
  exposedName: string;
}

interface RegistryFile {
  version: number;
  snapshots: SnapshotRecord[];
}

function validRecord(r: unknown): r is SnapshotRecord {
  if (typeof r !== 'object' || r === null) return false;
  const o = r as Record<string, unknown>;
  return (
    typeof o.snapshotId === 'string' &&
    typeof o.snapshotSetId === 'string' &&
    typeof o.snapshotPath === 'string' &&
    typeof o.volumeRoot === 'string' &&
    typeof o.storeTop === 'string' &&
    typeof o.provider === 'string' &&
    (PROVIDER_NAMES as readonly string[]).includes(o.provider) &&
    typeof o.attributes === 'number' &&
    typeof o.sessionId === 'string' &&
    typeof o.state === 'number' &&
    typeof o.exposedName === 'string'
  );
}

export class SnapshotRegistry {
  private readonly records = new Map<string, SnapshotRecord>();
  // Writes are queued so two changes never race to rename over each other.
  private queue: Promise<void> = Promise.resolve();

  private constructor(readonly stateDir: string) {}

  get file(): string {
    return join(this.stateDir, REGISTRY_FILE);
  }

  /** Opens (creating the state directory if needed) and loads the registry. */
  static async open(stateDir: string): Promise<SnapshotRegistry> {
    const reg = new SnapshotRegistry(stateDir);
    try {
      await fsp.mkdir(stateDir, { recursive: true, mode: 0o700 });
    } catch (e) {
      throw fsError(e, `the state directory ${stateDir}`);
    }
    let text: string | undefined;
    try {
      text = await fsp.readFile(reg.file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw fsError(e, `reading ${reg.file}`);
    }
    if (text !== undefined) {
      let parsed: RegistryFile;
      try {
        parsed = JSON.parse(text) as RegistryFile;
      } catch (e) {
        throw new VssError('VSS_E_UNEXPECTED', `the snapshot registry ${reg.file} is not valid JSON; move it aside to start an empty registry (its snapshots then have to be removed by hand)`, { cause: e });
      }
      if (parsed.version !== FORMAT_VERSION || !Array.isArray(parsed.snapshots) || !parsed.snapshots.every(validRecord)) {
        throw new VssError('VSS_E_UNEXPECTED', `the snapshot registry ${reg.file} has an unknown format (version ${String(parsed.version)}); use the shadowcopy version that wrote it, or move it aside`);
      }
      for (const r of parsed.snapshots) reg.records.set(r.snapshotId, r);
    }
    return reg;
  }

  list(): SnapshotRecord[] {
    return [...this.records.values()].map((r) => ({ ...r }));
  }

  get(snapshotId: string): SnapshotRecord | undefined {
    const r = this.records.get(snapshotId);
    return r && { ...r };
  }

  /** Adds or replaces records, durably. */
  put(records: readonly SnapshotRecord[]): Promise<void> {
    return this.change(() => {
      for (const r of records) this.records.set(r.snapshotId, { ...r });
    });
  }

  /** Forgets records, durably. */
  remove(snapshotIds: readonly string[]): Promise<void> {
    return this.change(() => {
      for (const id of snapshotIds) this.records.delete(id);
    });
  }

  private change(apply: () => void): Promise<void> {
    const next = this.queue.then(async () => {
      const before = new Map(this.records);
      apply();
      try {
        await this.persist();
      } catch (e) {
        // Memory must not claim what the disk does not hold.
        this.records.clear();
        for (const [k, v] of before) this.records.set(k, v);
        throw fsError(e, `writing the snapshot registry ${this.file}`);
      }
    });
    this.queue = next.catch(() => undefined);
    return next;
  }

  private async persist(): Promise<void> {
    const body: RegistryFile = { version: FORMAT_VERSION, snapshots: [...this.records.values()] };
    const tmp = join(this.stateDir, `.${REGISTRY_FILE}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
    const h = await fsp.open(tmp, 'wx', 0o600);
    try {
      await h.writeFile(`${JSON.stringify(body, null, 2)}\n`);
      await h.sync();
    } catch (e) {
      await h.close();
      await fsp.rm(tmp, { force: true });
      throw e;
    }
    await h.close();
    try {
      await fsp.rename(tmp, this.file);
    } catch (e) {
      await fsp.rm(tmp, { force: true });
      throw e;
    }
    await fsyncDir(this.stateDir);
  }
}
