export * from './store';
export * from './errors';
export * from './http.client';
export * from './identity';
export * from './client';
export * from './prekeys';
export * from './messenger';
export * from './mutex';
