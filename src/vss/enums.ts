// Every enumeration of spec §2 with its numeric value, its VSS name and, where the XML
// documents carry it, its token. Tokens marked "ours" in docs/xml.md have no genuine sample.

/** Numeric value ↔ VSS name ↔ XML token for one enumeration. */
export class EnumCodec<V extends number> {
  private readonly names = new Map<number, string>();
  private readonly tokens = new Map<number, string>();
  private readonly fromTokens = new Map<string, V>();
  private readonly fromNames = new Map<string, V>();

  constructor(
    readonly enumName: string,
    readonly prefix: string,
    values: Record<string, V>,
    tokens: Partial<Record<string, string | readonly string[]>> = {},
  ) {
    for (const [key, value] of Object.entries(values)) {
      this.names.set(value, prefix + key);
      this.fromNames.set((prefix + key).toLowerCase(), value);
      this.fromNames.set(key.toLowerCase(), value);
      const t = tokens[key];
      // The first spelling is the one we write; later ones are accepted on read.
      const spellings = t === undefined ? [] : typeof t === 'string' ? [t] : t;
      if (spellings[0] !== undefined) this.tokens.set(value, spellings[0]);
      for (const s of spellings) this.fromTokens.set(s.toLowerCase(), value);
    }
  }

  /** `VSS_BT_FULL` for 1, or undefined for a value outside the enumeration. */
  nameOf(value: number): string | undefined {
    return this.names.get(value);
  }

  /** The XML token written for a value (`full`), or undefined when it has none. */
  tokenOf(value: number): string | undefined {
    return this.tokens.get(value);
  }

  /** The value of an XML token, compared case-insensitively (tolerant reading). */
  fromToken(token: string): V | undefined {
    return this.fromTokens.get(token.toLowerCase());
  }

  /** The value of a VSS name, with or without its prefix (`VSS_BT_FULL` or `FULL`), any case. */
  fromName(name: string): V | undefined {
    return this.fromNames.get(name.toLowerCase());
  }

  has(value: number): value is V {
    return this.names.has(value);
  }

  /** Known tokens, for error messages. */
  allTokens(): string[] {
    return [...this.tokens.values()];
  }
}

/** Names of the set bits of a flag mask, for display: `VSS_BS_DIFFERENTIAL|VSS_BS_COPY`. */
export function flagNames(prefix: string, flags: Record<string, number>, mask: number): string[] {
  const out: string[] = [];
  let rest = mask >>> 0;
  for (const [key, bit] of Object.entries(flags)) {
    if (bit === 0 || (bit & (bit - 1)) !== 0) continue; // single bits only
    if ((rest & bit) === bit) {
      out.push(prefix + key);
      rest &= ~bit >>> 0;
    }
  }
  if (rest !== 0) out.push(`0x${rest.toString(16)}`);
  return out;
}

type ValueOf<T> = T[keyof T];

// §2.1
export const WriterState = {
  UNKNOWN: 0,
  STABLE: 1,
  WAITING_FOR_FREEZE: 2,
  WAITING_FOR_THAW: 3,
  WAITING_FOR_POST_SNAPSHOT: 4,
  WAITING_FOR_BACKUP_COMPLETE: 5,
  FAILED_AT_IDENTIFY: 6,
  FAILED_AT_PREPARE_BACKUP: 7,
  FAILED_AT_PREPARE_SNAPSHOT: 8,
  FAILED_AT_FREEZE: 9,
  FAILED_AT_THAW: 10,
  FAILED_AT_POST_SNAPSHOT: 11,
  FAILED_AT_BACKUP_COMPLETE: 12,
  FAILED_AT_PRE_RESTORE: 13,
  FAILED_AT_POST_RESTORE: 14,
  FAILED_AT_BACKUPSHUTDOWN: 15,
  COUNT: 16,
} as const;
export type WriterState = ValueOf<typeof WriterState>;
export const writerStateCodec = new EnumCodec('VSS_WRITER_STATE', 'VSS_WS_', WriterState);

/** A FAILED_AT_* state, or UNKNOWN, which VSS documents as a writer error. */
export function isFailedWriterState(state: number): boolean {
  return state === WriterState.UNKNOWN || (state >= WriterState.FAILED_AT_IDENTIFY && state <= WriterState.FAILED_AT_BACKUPSHUTDOWN);
}

// §2.2
export const BackupType = { UNDEFINED: 0, FULL: 1, INCREMENTAL: 2, DIFFERENTIAL: 3, LOG: 4, COPY: 5, OTHER: 6 } as const;
export type BackupType = ValueOf<typeof BackupType>;
export const backupTypeCodec = new EnumCodec('VSS_BACKUP_TYPE', 'VSS_BT_', BackupType, {
  UNDEFINED: 'undefined',
  FULL: 'full',
  INCREMENTAL: 'incremental',
  DIFFERENTIAL: 'differential',
  LOG: 'log',
  COPY: 'copy',
  OTHER: 'other',
});

export const RestoreType = { UNDEFINED: 0, BY_COPY: 1, IMPORT: 2, OTHER: 3 } as const;
export type RestoreType = ValueOf<typeof RestoreType>;
export const restoreTypeCodec = new EnumCodec('VSS_RESTORE_TYPE', 'VSS_RTYPE_', RestoreType, {
  UNDEFINED: 'undefined',
  BY_COPY: 'byCopy',
  IMPORT: 'import',
  OTHER: 'other',
});

export const RollForwardType = { UNDEFINED: 0, NONE: 1, ALL: 2, PARTIAL: 3 } as const;
export type RollForwardType = ValueOf<typeof RollForwardType>;
export const rollForwardTypeCodec = new EnumCodec('VSS_ROLLFORWARD_TYPE', 'VSS_RF_', RollForwardType, {
  UNDEFINED: 'undefined',
  NONE: 'none',
  ALL: 'all',
  PARTIAL: 'partial',
});

// §2.3
export const UsageType = { UNDEFINED: 0, BOOTABLESYSTEMSTATE: 1, SYSTEMSERVICE: 2, USERDATA: 3, OTHER: 4 } as const;
export type UsageType = ValueOf<typeof UsageType>;
export const usageTypeCodec = new EnumCodec('VSS_USAGE_TYPE', 'VSS_UT_', UsageType, {
  UNDEFINED: 'UNDEFINED',
  BOOTABLESYSTEMSTATE: 'BOOTABLE_SYSTEM_STATE',
  SYSTEMSERVICE: 'SYSTEM_SERVICE',
  USERDATA: 'USER_DATA',
  OTHER: 'OTHER',
});

export const SourceType = { UNDEFINED: 0, TRANSACTEDDB: 1, NONTRANSACTEDDB: 2, OTHER: 3 } as const;
export type SourceType = ValueOf<typeof SourceType>;
export const sourceTypeCodec = new EnumCodec('VSS_SOURCE_TYPE', 'VSS_ST_', SourceType, {
  UNDEFINED: 'UNDEFINED',
  TRANSACTEDDB: 'TRANSACTION_DB',
  // Unverified spelling; both candidates from the spec pages are accepted on read.
  NONTRANSACTEDDB: ['NONTRANSACTIONAL_DB', 'NONTRANSACTION_DB'],
  OTHER: 'OTHER',
});

export const ComponentType = { UNDEFINED: 0, DATABASE: 1, FILEGROUP: 2 } as const;
export type ComponentType = ValueOf<typeof ComponentType>;
export const componentTypeCodec = new EnumCodec('VSS_COMPONENT_TYPE', 'VSS_CT_', ComponentType, {
  DATABASE: 'database',
  FILEGROUP: 'filegroup',
});

// §2.4
export const RestoreMethod = {
  UNDEFINED: 0,
  RESTORE_IF_NOT_THERE: 1,
  RESTORE_IF_CAN_REPLACE: 2,
  STOP_RESTORE_START: 3,
  RESTORE_TO_ALTERNATE_LOCATION: 4,
  RESTORE_AT_REBOOT: 5,
  RESTORE_AT_REBOOT_IF_CANNOT_REPLACE: 6,
  CUSTOM: 7,
  RESTORE_STOP_START: 8,
} as const;
export type RestoreMethod = ValueOf<typeof RestoreMethod>;
export const restoreMethodCodec = new EnumCodec('VSS_RESTOREMETHOD_ENUM', 'VSS_RME_', RestoreMethod, {
  UNDEFINED: 'UNDEFINED',
  RESTORE_IF_NOT_THERE: 'RESTORE_IF_NONE_THERE',
  RESTORE_IF_CAN_REPLACE: 'RESTORE_IF_CAN_BE_REPLACED',
  STOP_RESTORE_START: 'STOP_RESTART_SERVICE',
  RESTORE_TO_ALTERNATE_LOCATION: 'RESTORE_TO_ALTERNATE_LOCATION',
  RESTORE_AT_REBOOT: 'REPLACE_AT_REBOOT',
  RESTORE_AT_REBOOT_IF_CANNOT_REPLACE: 'REPLACE_AT_REBOOT_IF_CANNOT_REPLACE',
  CUSTOM: 'CUSTOM',
  RESTORE_STOP_START: 'RESTORE_STOP_START',
});

export const WriterRestore = { UNDEFINED: 0, NEVER: 1, IF_REPLACE_FAILS: 2, ALWAYS: 3 } as const;
export type WriterRestore = ValueOf<typeof WriterRestore>;
export const writerRestoreCodec = new EnumCodec('VSS_WRITERRESTORE_ENUM', 'VSS_WRE_', WriterRestore, {
  UNDEFINED: 'undefined',
  NEVER: 'never',
  IF_REPLACE_FAILS: 'ifReplaceFails',
  ALWAYS: 'always',
});

export const RestoreTarget = { UNDEFINED: 0, ORIGINAL: 1, ALTERNATE: 2, DIRECTED: 3, ORIGINAL_LOCATION: 4 } as const;
export type RestoreTarget = ValueOf<typeof RestoreTarget>;
export const restoreTargetCodec = new EnumCodec('VSS_RESTORE_TARGET', 'VSS_RT_', RestoreTarget, {
  UNDEFINED: 'undefined',
  ORIGINAL: 'original',
  ALTERNATE: 'alternate',
  DIRECTED: 'directed',
  ORIGINAL_LOCATION: 'originalLocation',
});

export const FileRestoreStatus = { UNDEFINED: 0, NONE: 1, ALL: 2, FAILED: 3 } as const;
export type FileRestoreStatus = ValueOf<typeof FileRestoreStatus>;
export const fileRestoreStatusCodec = new EnumCodec('VSS_FILE_RESTORE_STATUS', 'VSS_RS_', FileRestoreStatus, {
  UNDEFINED: 'undefined',
  NONE: 'none',
  ALL: 'all',
  FAILED: 'failed',
});

// §2.5 (bit masks: values are combined with |)
export const ComponentFlags = { BACKUP_RECOVERY: 0x1, APP_ROLLBACK_RECOVERY: 0x2, NOT_SYSTEM_STATE: 0x4 } as const;
export const COMPONENT_FLAGS_PREFIX = 'VSS_CF_';

export const FileSpecBackupType = {
  FULL_BACKUP_REQUIRED: 0x1,
  DIFFERENTIAL_BACKUP_REQUIRED: 0x2,
  INCREMENTAL_BACKUP_REQUIRED: 0x4,
  LOG_BACKUP_REQUIRED: 0x8,
  FULL_SNAPSHOT_REQUIRED: 0x100,
  DIFFERENTIAL_SNAPSHOT_REQUIRED: 0x200,
  INCREMENTAL_SNAPSHOT_REQUIRED: 0x400,
  LOG_SNAPSHOT_REQUIRED: 0x800,
  CREATED_DURING_BACKUP: 0x10000,
  ALL_BACKUP_REQUIRED: 0xf,
  ALL_SNAPSHOT_REQUIRED: 0xf00,
} as const;
export const FILE_SPEC_BACKUP_TYPE_PREFIX = 'VSS_FSBT_';
/** Every file set's mask unless the writer says otherwise: 0xF0F = 3855. */
export const DEFAULT_FILESPEC_BACKUP_TYPE = FileSpecBackupType.ALL_BACKUP_REQUIRED | FileSpecBackupType.ALL_SNAPSHOT_REQUIRED;

export const BackupSchema = {
  UNDEFINED: 0x0,
  DIFFERENTIAL: 0x1,
  INCREMENTAL: 0x2,
  EXCLUSIVE_INCREMENTAL_DIFFERENTIAL: 0x4,
  LOG: 0x8,
  COPY: 0x10,
  TIMESTAMPED: 0x20,
  LAST_MODIFY: 0x40,
  LSN: 0x80,
  WRITER_SUPPORTS_NEW_TARGET: 0x100,
  WRITER_SUPPORTS_RESTORE_WITH_MOVE: 0x200,
  INDEPENDENT_SYSTEM_STATE: 0x400,
  ROLLFORWARD_RESTORE: 0x1000,
  RESTORE_RENAME: 0x2000,
  AUTHORITATIVE_RESTORE: 0x4000,
  WRITER_SUPPORTS_PARALLEL_RESTORES: 0x8000,
} as const;
export const BACKUP_SCHEMA_PREFIX = 'VSS_BS_';

// §2.6
export const VolumeSnapshotAttributes = {
  PERSISTENT: 0x1,
  NO_AUTORECOVERY: 0x2,
  CLIENT_ACCESSIBLE: 0x4,
  NO_AUTO_RELEASE: 0x8,
  NO_WRITERS: 0x10,
  TRANSPORTABLE: 0x20,
  NOT_SURFACED: 0x40,
  NOT_TRANSACTED: 0x80,
  HARDWARE_ASSISTED: 0x10000,
  DIFFERENTIAL: 0x20000,
  PLEX: 0x40000,
  IMPORTED: 0x80000,
  EXPOSED_LOCALLY: 0x100000,
  EXPOSED_REMOTELY: 0x200000,
  AUTORECOVER: 0x400000,
  ROLLBACK_RECOVERY: 0x800000,
  DELAYED_POSTSNAPSHOT: 0x1000000,
  TXF_RECOVERY: 0x2000000,
  FILE_SHARE: 0x4000000,
} as const;
export const VOLUME_SNAPSHOT_ATTRIBUTES_PREFIX = 'VSS_VOLSNAP_ATTR_';

export const SnapshotContext = {
  BACKUP: 0x0,
  FILE_SHARE_BACKUP: 0x10,
  NAS_ROLLBACK: 0x19,
  APP_ROLLBACK: 0x9,
  CLIENT_ACCESSIBLE: 0x1d,
  CLIENT_ACCESSIBLE_WRITERS: 0xd,
  ALL: 0xffffffff,
} as const;
export type SnapshotContext = ValueOf<typeof SnapshotContext>;
export const snapshotContextCodec = new EnumCodec('VSS_SNAPSHOT_CONTEXT', 'VSS_CTX_', SnapshotContext, {
  BACKUP: 'backup',
  FILE_SHARE_BACKUP: 'fileShareBackup',
  NAS_ROLLBACK: 'nasRollback',
  APP_ROLLBACK: 'appRollback',
  CLIENT_ACCESSIBLE: 'clientAccessible',
  CLIENT_ACCESSIBLE_WRITERS: 'clientAccessibleWriters',
  ALL: 'all',
});
/** Attribute bits a requester may OR into a context (the union the spec pages allow). */
export const CONTEXT_MODIFIER_ATTRIBUTES =
  VolumeSnapshotAttributes.TRANSPORTABLE |
  VolumeSnapshotAttributes.DIFFERENTIAL |
  VolumeSnapshotAttributes.PLEX |
  VolumeSnapshotAttributes.NO_AUTORECOVERY |
  VolumeSnapshotAttributes.NOT_TRANSACTED |
  VolumeSnapshotAttributes.ROLLBACK_RECOVERY |
  VolumeSnapshotAttributes.TXF_RECOVERY;

export const SnapshotState = {
  UNKNOWN: 0,
  PREPARING: 1,
  PROCESSING_PREPARE: 2,
  PREPARED: 3,
  PROCESSING_PRECOMMIT: 4,
  PRECOMMITTED: 5,
  PROCESSING_COMMIT: 6,
  COMMITTED: 7,
  PROCESSING_POSTCOMMIT: 8,
  PROCESSING_PREFINALCOMMIT: 9,
  PREFINALCOMMITTED: 10,
  PROCESSING_POSTFINALCOMMIT: 11,
  CREATED: 12,
  ABORTED: 13,
  DELETED: 14,
  POSTCOMMITTED: 15,
  COUNT: 16,
} as const;
export type SnapshotState = ValueOf<typeof SnapshotState>;
export const snapshotStateCodec = new EnumCodec('VSS_SNAPSHOT_STATE', 'VSS_SS_', SnapshotState);

export const ObjectType = { UNKNOWN: 0, NONE: 1, SNAPSHOT_SET: 2, SNAPSHOT: 3, PROVIDER: 4, TYPE_COUNT: 5 } as const;
export type ObjectType = ValueOf<typeof ObjectType>;
export const objectTypeCodec = new EnumCodec('VSS_OBJECT_TYPE', 'VSS_OBJECT_', ObjectType);

export const ProviderType = { UNKNOWN: 0, SYSTEM: 1, SOFTWARE: 2, HARDWARE: 3, FILESHARE: 4 } as const;
export type ProviderType = ValueOf<typeof ProviderType>;
export const providerTypeCodec = new EnumCodec('VSS_PROVIDER_TYPE', 'VSS_PROV_', ProviderType);

export const ApplicationLevel = { UNKNOWN: 0, SYSTEM: 1, BACK_END: 2, FRONT_END: 3, SYSTEM_RM: 4, AUTO: -1 } as const;
export type ApplicationLevel = ValueOf<typeof ApplicationLevel>;
export const applicationLevelCodec = new EnumCodec('VSS_APPLICATION_LEVEL', 'VSS_APP_', ApplicationLevel, {
  UNKNOWN: 'unknown',
  SYSTEM: 'system',
  BACK_END: 'backEnd',
  FRONT_END: 'frontEnd',
  SYSTEM_RM: 'systemRm',
  AUTO: 'auto',
});

export const AlternateWriterState = { UNDEFINED: 0, NO_ALTERNATE_WRITER: 1, ALTERNATE_WRITER_EXISTS: 2, THIS_IS_ALTERNATE_WRITER: 3 } as const;
export type AlternateWriterState = ValueOf<typeof AlternateWriterState>;
export const alternateWriterStateCodec = new EnumCodec('VSS_ALTERNATE_WRITER_STATE', 'VSS_AWS_', AlternateWriterState);

export const SubscribeMask = {
  POST_SNAPSHOT_FLAG: 0x1,
  BACKUP_EVENTS_FLAG: 0x2,
  RESTORE_EVENTS_FLAG: 0x4,
  IO_THROTTLING_FLAG: 0x8,
  ALL_FLAGS: 0xffffffff,
} as const;
export const SUBSCRIBE_MASK_PREFIX = 'VSS_SM_';
