// The coordinator: sessions, the event state machine, the writer registry, timeouts, timelines.
export { Coordinator, type CoordinatorOptions, type LogFn } from './coordinator.js';
export { BackupSession, OperationCancelled, isFailedState } from './session.js';
export { systemClock, type Clock, type TimerHandle } from './clock.js';
export { DEFAULT_TIMEOUTS, resolveTimeouts, type Timeouts, type TimeoutsInput } from './timeouts.js';
export { WriterRegistry, WriterEntry, type WriterLink, type WriterSubscription } from './registry.js';
export { Timeline, TimelineStore } from './timeline.js';
export { SERVER_VERSION } from './server.js';
export { Daemon, readDaemonConfig, DEFAULT_STATE_DIR, DEFAULT_CONFIG_DIR, type DaemonOptions } from './daemon.js';
