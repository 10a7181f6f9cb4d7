export * from './kt.errors';
export * from './kt.verifier';
export * from './kt.client';
