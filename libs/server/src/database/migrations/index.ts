import { Init1764000000000 } from './1764000000000-Init';

/** Every migration, in order. New ones are appended here. */
export const MIGRATIONS = [Init1764000000000];
