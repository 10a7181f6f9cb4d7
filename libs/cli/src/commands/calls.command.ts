import type { CallLogEntry, UmbraEventOf } from '@umbra/sdk';
import { WeriftCallMedia } from '../call-media';
import { parsePositiveInt, type Command } from '../command';
import { CliError } from '../cli-error';
import { formatTime } from '../output';
import type { Session } from '../session';

/** "1:05" for a connected call's length. */
export function formatCallDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  const h = Math.floor(s / 3600);
  const mm = String(Math.floor((s % 3600) / 60));
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${mm.padStart(2, '0')}:${ss}` : `${mm}:${ss}`;
}

/** What a person reads for one finished call: answered with its length, or why it did not happen. */
export function describeCall(e: CallLogEntry): string {
  if (e.outcome === 'answered') return `answered, ${formatCallDuration(e.durationMs)}`;
  if (e.direction === 'outgoing' && e.outcome === 'hangup') return 'cancelled';
  return e.outcome.replace(/_/g, ' ');
}

async function nameOf(s: Session, accountId: string): Promise<string> {
  try {
    const a = await s.client.getAccount(accountId);
    return a.handle ? `@${a.handle}` : accountId;
  } catch {
    return accountId;
  }
}

export const callsCommands: Command[] = [
  {
    words: ['call'],
    args: '<account-id|@handle>',
    flags: { video: { kind: 'boolean' }, seconds: { kind: 'string', value: 'N' } },
    summary:
      'call the peer on all of its devices (end-to-end encrypted signalling, media relayed through TURN;\nthis CLI sends a generated tone); prints each state change, hangs up N seconds after the call\nconnects (--seconds) or on Ctrl-C; exit code 1 when the call did not connect',
    async run({ session, out, args, flags }) {
      const s = await session();
      const seconds = typeof flags.get('seconds') === 'string' ? parsePositiveInt(flags.get('seconds') as string, '--seconds') : undefined;
      const media = flags.get('video') === true ? 'video' : 'audio';
      const rtc = new WeriftCallMedia();
      const umbra = await s.umbra({ calls: { createPeerConnection: rtc.createPeerConnection } });
      const peer = await s.resolvePeer(args[0]!);
      await s.connect();
      let callId: string | undefined;
      let connected = false;
      let hangupTimer: ReturnType<typeof setTimeout> | undefined;
      const ended = new Promise<UmbraEventOf<'call'>>((resolve) => {
        umbra.on('call', (e) => {
          if (e.callId !== callId && callId !== undefined) return;
          const stats = rtc.statsOf(e.callId);
          const rtp = e.state === 'ended' && stats ? { rtpSent: stats.sent, rtpReceived: stats.received } : {};
          out.result(e.state === 'ended' ? `ended: ${e.reason ?? 'unknown'}` : e.state, { callId: e.callId, state: e.state, ...(e.reason ? { reason: e.reason } : {}), ...rtp });
          if (e.state === 'connected') {
            connected = true;
            if (seconds !== undefined) hangupTimer = setTimeout(() => void umbra.calls.hangup(e.callId), seconds * 1000);
          }
          if (e.state === 'ended') resolve(e);
        });
      });
      const stop = () => void (callId && umbra.calls.hangup(callId));
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      try {
        if (!out.json) out.note(`calling ${peer.label} (${media}); Ctrl-C hangs up`);
        callId = await s.whileConnected(umbra.calls.start(peer.accountId, { media }), 'the call was not placed');
        const end = await ended;
        await s.client.settle();
        if (!connected) throw new CliError(`the call did not connect: ${end.reason ?? 'ended'}`);
      } finally {
        clearTimeout(hangupTimer);
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        rtc.close();
      }
    },
  },
  {
    words: ['calls'],
    args: '',
    summary: 'call history of this device, newest first: answered (with the duration), missed, declined, busy…\n(fetches call signals that arrived while it was away first)',
    async run({ session, out }) {
      const s = await session();
      // Offers and hang-ups queued for this device become missed calls; it never rings or answers here.
      const rtc = new WeriftCallMedia({ tone: false });
      const umbra = await s.umbra({ calls: { createPeerConnection: rtc.createPeerConnection } });
      try {
        await s.connect();
        // The server pushes the queue right after connecting: give it a moment, then let it be handled.
        await new Promise((r) => setTimeout(r, 500));
        await s.client.settle();
      } catch (err) {
        out.note(`showing this device's history only: ${err instanceof Error ? err.message : String(err)}`);
      }
      const entries = await umbra.calls.history();
      const lines: string[] = [];
      for (const e of entries) {
        const arrow = e.direction === 'outgoing' ? 'to' : 'from';
        lines.push(`${formatTime(e.startedAt)}  ${e.media}  ${arrow} ${await nameOf(s, e.peer)}  ${describeCall(e)}`);
      }
      if (entries.length === 0) lines.push('no calls yet');
      if (out.json) for (const e of entries) out.result('', e);
      else out.result(lines, undefined);
    },
  },
];
