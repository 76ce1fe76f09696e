// Component selection, backup sets and restore sets: the rules of spec §4.5, §13, §14, §15
// in one pure module shared by the requester SDK, the CLI and the restore executor.
export * from './logical-path.js';
export * from './component-tree.js';
export * from './file-tree.js';
export * from './backup-selection.js';
export * from './backup-set.js';
export * from './restore-selection.js';
export * from './restore-set.js';
export * from './restore-options.js';
