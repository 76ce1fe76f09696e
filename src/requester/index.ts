// The requester SDK (imports only vss and protocol).
export { BackupComponents, AdminClient, type ConnectOptions, type WriterStatus, type ComponentKey } from './backup-components.js';
export { VssAsync, type AsyncState } from './async.js';
