export * from './errors';
export * from './bytes';
export * from './primitives';
export * from './identity';
export * from './prekeys';
