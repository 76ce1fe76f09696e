// The wire protocol shared by the daemon and both SDKs (docs/protocol.md).
export * from './framing.js';
export * from './errors.js';
export * from './handshake.js';
export * from './writer-events.js';
export * from './requester-calls.js';
export * from './admin.js';
export * from './client.js';
