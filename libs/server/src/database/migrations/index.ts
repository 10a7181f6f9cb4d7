import { Init1764000000000 } from './1764000000000-Init';
import { Prekeys1764000100000 } from './1764000100000-Prekeys';

/** Every migration, in order. New ones are appended here. */
export const MIGRATIONS = [Init1764000000000, Prekeys1764000100000];
