// The writer SDK (imports only vss and protocol).
export { Writer, type WriterOptions, type SubscribeOptions, type HandlerResult, type EventContext } from './writer.js';
