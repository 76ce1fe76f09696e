// Snapshot providers and snapshot management: the only entry the coordinator imports.
export * from './types.js';
export { BtrfsProvider, ReflinkProvider, CopyProvider, createProviders, chooseProvider } from './providers.js';
export { SnapshotManager, SnapshotSetCreation, type SnapshotManagerOptions, type RecoveryReport, type DeleteResult } from './manager.js';
export { SnapshotRegistry, REGISTRY_FILE, type SnapshotRecord } from './registry.js';
export { DEFAULT_STORE_NAME, storeFor, type SnapshotStore } from './store.js';
export { resolveVolume, isMountPoint, type VolumeInfo } from './system.js';
