import { Init1764000000000 } from './1764000000000-Init';
import { Prekeys1764000100000 } from './1764000100000-Prekeys';
import { Vanishing1764000200000 } from './1764000200000-Vanishing';
import { Attachments1764000300000 } from './1764000300000-Attachments';

/** Every migration, in order. New ones are appended here. */
export const MIGRATIONS = [Init1764000000000, Prekeys1764000100000, Vanishing1764000200000, Attachments1764000300000];
