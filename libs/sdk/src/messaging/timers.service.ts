import type { Content } from '@umbra/crypto';
import type { Timer } from '../history';
import type { KeyValueStore } from '../store';
import type { MessagingContext } from './messaging.context';
import { newId } from './messaging.context';
import { LocalState } from '../state/local.state';
import { STATE_KEYS } from '../state/state.keys';

/** Conversations' vanishing timers (§8): stored per conversation, announced with Content{k:"exp_set"}. */
export class TimersService {
  constructor(private readonly ctx: MessagingContext) {}

  /** The vanishing timer of a conversation (peer account or group id), or null. */
  async get(conv: string, kv: KeyValueStore = this.ctx.store): Promise<Timer | null> {
    return (await new LocalState(kv).get(STATE_KEYS.timer(conv))) ?? null;
  }

  /** Stores a conversation's timer; a change is a `timer` event. */
  async save(conv: string, timer: Timer | null, kv: KeyValueStore = this.ctx.store): Promise<void> {
    const current = await this.get(conv, kv);
    if (JSON.stringify(current) === JSON.stringify(timer)) return;
    if (timer) await new LocalState(kv).set(STATE_KEYS.timer(conv), timer);
    else await new LocalState(kv).delete(STATE_KEYS.timer(conv));
    this.ctx.events.emit('timer', conv, timer);
  }

  /** The E2EE Content{k:"exp_set"} that tells a peer (or, with `gid`, a group member) the timer. */
  announcement(timer: Timer | null, gid?: string): Content {
    return { v: 1, id: newId(), ts: this.ctx.now(), k: 'exp_set', ...(gid === undefined ? {} : { gid }), t: timer?.t ?? 0, m: timer?.m ?? 'send' };
  }

  /** Applies a received exp_set to conversation `conv` (an invalid or zero `t` turns the timer off). */
  async applyAnnouncement(conv: string, c: Content, kv: KeyValueStore): Promise<void> {
    const t = typeof c.t === 'number' && Number.isInteger(c.t) && c.t >= 1 && c.t <= 0xffff_ffff ? c.t : 0;
    await this.save(conv, t > 0 ? { t, m: c.m === 'read' ? 'read' : 'send' } : null, kv);
  }
}
