export * from './vss/index.js';
