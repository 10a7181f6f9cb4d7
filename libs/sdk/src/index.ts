export * from './store';
export * from './errors';
export * from './http.client';
export * from './identity';
export * from './client';
export * from './prekeys';
export * from './messenger';
export * from './mutex';
export * from './linking';
export * from './contacts';
export * from './history';
export * from './receipts';
export * from './kt/index';
export * from './attachments/index';
export * from './calls/index';
/** The front door: Umbra.create / open / link, with messages, groups, files, devices, account and one event stream. */
export * from './umbra/index';
/** The registration proof of work, for a client that runs it off its main thread (UmbraClient.register's solvePow). */
export { solvePow } from '@umbra/protocol';
/** The rest of the typed local state (LocalState and STATE_KEYS come with the front door). */
export { stateWrite, type StateEntry } from './state/local.state';
export { STATE_FAMILIES } from './state/state.keys';
export type { StateFamily } from './state/state.key';
