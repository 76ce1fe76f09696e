// The VSS model: pure and synchronous.
export * from './guid.js';
export * from './errors.js';
export * from './enums.js';
export * from './strings.js';
export * from './writer-metadata.js';
export * from './backup-components.js';
export * from './snapshot.js';
export * from './ranges.js';
export * from './xml/index.js';
export * from './selection/index.js';
