export { LocalState, stateWrite, type StateEntry } from '../state/local.state';
export { STATE_FAMILIES, STATE_KEYS } from '../state/state.keys';
export type { StateFamily, StateKey } from '../state/state.key';
