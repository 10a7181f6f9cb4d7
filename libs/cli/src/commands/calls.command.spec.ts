import type { CallLogEntry } from '@umbra/sdk';
import { tonePacket } from '../call-media';
import { describeCall, formatCallDuration } from './calls.command';

const entry = (e: Partial<CallLogEntry>): CallLogEntry => ({ callId: 'c', peer: 'um1x', direction: 'outgoing', media: 'audio', outcome: 'answered', startedAt: 0, endedAt: 0, durationMs: 0, ...e });

describe('umbra calls output', () => {
  it('durations read m:ss, with hours when a call was that long', () => {
    expect([formatCallDuration(0), formatCallDuration(2_400), formatCallDuration(65_000), formatCallDuration(3_725_000)]).toEqual(['0:00', '0:02', '1:05', '1:02:05']);
  });

  it('answered calls show their length; the others why they did not happen', () => {
    expect(describeCall(entry({ durationMs: 3000 }))).toBe('answered, 0:03');
    expect(describeCall(entry({ outcome: 'missed', direction: 'incoming' }))).toBe('missed');
    expect(describeCall(entry({ outcome: 'no_answer' }))).toBe('no answer');
    expect(describeCall(entry({ outcome: 'hangup' }))).toBe('cancelled');
    expect(describeCall(entry({ outcome: 'answered_elsewhere', direction: 'incoming' }))).toBe('answered elsewhere');
  });

  it('the tone is 20 ms of µ-law samples that are not silence', () => {
    const p = tonePacket(0);
    expect(p).toHaveLength(160);
    expect(new Set(p).size).toBeGreaterThan(10);
  });
});
