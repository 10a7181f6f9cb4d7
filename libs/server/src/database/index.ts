export * from './types';
export * from './data-source';
export * from './accounts.repository';
export * from './tokens.repository';
export * from './prekeys.repository';
export * from './envelopes.repository';
export * from './envelope.mapper';
