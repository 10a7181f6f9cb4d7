import type { Timer } from '@umbra/sdk';
import type { ChatMessage } from './conversation.model';
import type { ConversationStore } from './conversations.store';
import type { WebUmbra } from './session.service';

/** The timers a person can choose (seconds); "after read" counts from the first display. */
export const TIMER_OPTIONS: { seconds: number; label: string }[] = [
  { seconds: 30, label: '30 s' },
  { seconds: 300, label: '5 min' },
  { seconds: 3600, label: '1 h' },
  { seconds: 86_400, label: '1 d' },
  { seconds: 604_800, label: '1 w' },
];

/** The value of the timer control: "off", or "<seconds>:<mode>". */
export function timerValue(timer: Timer | null): string {
  return timer ? `${timer.t}:${timer.m}` : 'off';
}

export function parseTimerValue(value: string): Timer | null {
  if (value === 'off') return null;
  const [t, m] = value.split(':');
  const seconds = Number(t);
  if (!Number.isInteger(seconds) || seconds < 1 || (m !== 'send' && m !== 'read')) throw new Error('unknown timer');
  return { t: seconds, m };
}

export function describeTimer(timer: Timer | null): string {
  if (!timer) return 'Messages do not vanish';
  const span = TIMER_OPTIONS.find((o) => o.seconds === timer.t)?.label ?? `${timer.t} s`;
  return timer.m === 'read' ? `Messages vanish ${span} after they are read` : `Messages vanish ${span} after they are sent`;
}

/** "vanishes in 28 s", "… in 4 min", "… 30 s after reading"; undefined without a timer. */
export function countdown(m: ChatMessage, now: number): string | undefined {
  if (!m.exp) return undefined;
  if (m.exp.m === 'read' && !m.outgoing && m.readAt === undefined) return `vanishes ${span(m.exp.t * 1000)} after reading`;
  if (m.deleteAt === null) return undefined;
  return `vanishes in ${span(Math.max(0, m.deleteAt - now))}`;
}

function span(ms: number): string {
  const s = Math.ceil(ms / 1000);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.ceil(s / 60)} min`;
  if (s < 86_400) return `${Math.ceil(s / 3600)} h`;
  return `${Math.ceil(s / 86_400)} d`;
}

/** Sets a conversation's or group's timer; every member's devices hear it (E2EE exp_set). */
export class VanishingService {
  constructor(
    private readonly umbra: WebUmbra,
    private readonly conversations: ConversationStore,
  ) {}

  async set(conv: string, timer: Timer | null): Promise<void> {
    await this.umbra.messages.setTimer(conv, timer);
    await this.conversations.refresh(conv);
  }
}
