import { History, type SendOp } from './support/history';

const A = 'acct-a:1';
const B = 'acct-b:1';
const C = 'acct-c:7';

function sendTo(h: History, id: string, recipients: string[], extra: Partial<SendOp> = {}, acked = true): SendOp {
  const op = h.send({ fault: extra.fault ?? 'baseline', sender: A, clientMessageId: id, recipients, expiresAt: extra.expiresAt ?? 0, sentAt: 1000 });
  if (acked) h.acked(op, 1001);
  return op;
}

function deliver(h: History, device: string, id: string, opts: { at?: number; intendedFor?: string; expiresAt?: number; shown?: boolean } = {}): void {
  h.receive({ device, sender: A, clientMessageId: id, intendedFor: opts.intendedFor ?? device, expiresAt: opts.expiresAt ?? 0, at: opts.at ?? 2000 });
  if (opts.shown ?? true) h.show({ device, sender: A, clientMessageId: id });
}

const check = (h: History, now = 10_000) => h.check({ now, lateGraceMs: 100 });

describe('chaos history checker', () => {
  test('a clean history has no violations and counts every pair', () => {
    const h = new History();
    sendTo(h, 'm1', [B, C]);
    deliver(h, B, 'm1');
    deliver(h, C, 'm1');
    const { reports, violations } = check(h);
    expect(violations).toEqual([]);
    expect(reports).toEqual([{ fault: 'baseline', sent: 1, acked: 1, delivered: 2, duplicatesSuppressed: 0, lost: 0, expiredUndelivered: 0, shownTwice: 0, lateVanished: 0, misrouted: 0 }]);
  });

  test('detects loss: an acknowledged send missing at one recipient device', () => {
    const h = new History();
    sendTo(h, 'm1', [B, C]);
    deliver(h, B, 'm1');
    const { reports, violations } = check(h);
    expect(reports[0]).toMatchObject({ acked: 1, delivered: 1, lost: 1 });
    expect(violations).toEqual([{ kind: 'lost', fault: 'baseline', device: C, sender: A, clientMessageId: 'm1' }]);
  });

  test('an unacknowledged send may be missing; an expired vanishing one is counted, not lost', () => {
    const h = new History();
    sendTo(h, 'never-stored', [B], {}, false);
    sendTo(h, 'vanished', [B], { expiresAt: 5000 });
    sendTo(h, 'still-due', [B], { expiresAt: 50_000 });
    const { reports, violations } = check(h, 10_000);
    expect(reports[0]).toMatchObject({ sent: 3, acked: 2, lost: 1, expiredUndelivered: 1 });
    expect(violations.map((v) => [v.kind, v.clientMessageId])).toEqual([['lost', 'still-due']]);
  });

  test('duplicates the SDK suppressed are counted; one shown twice is a violation', () => {
    const h = new History();
    sendTo(h, 'm1', [B]);
    sendTo(h, 'm2', [B]);
    deliver(h, B, 'm1');
    deliver(h, B, 'm1', { shown: false });
    deliver(h, B, 'm1', { shown: false });
    deliver(h, B, 'm2');
    deliver(h, B, 'm2');
    const { reports, violations } = check(h);
    expect(reports[0]).toMatchObject({ delivered: 2, duplicatesSuppressed: 2, shownTwice: 1, lost: 0 });
    expect(violations).toEqual([{ kind: 'shown-twice', fault: 'baseline', device: B, sender: A, clientMessageId: 'm2' }]);
  });

  test('detects a vanishing message delivered after its deadline (beyond the grace)', () => {
    const h = new History();
    sendTo(h, 'on-time', [B], { expiresAt: 3000 });
    sendTo(h, 'in-grace', [B], { expiresAt: 3000 });
    sendTo(h, 'late', [B], { expiresAt: 3000 });
    deliver(h, B, 'on-time', { at: 2999, expiresAt: 3000 });
    deliver(h, B, 'in-grace', { at: 3100, expiresAt: 3000 });
    deliver(h, B, 'late', { at: 3101, expiresAt: 3000 });
    const { reports, violations } = check(h);
    expect(reports[0]).toMatchObject({ lateVanished: 1, lost: 0 });
    expect(violations).toEqual([{ kind: 'late-vanished', fault: 'baseline', device: B, sender: A, clientMessageId: 'late', detail: '101 ms after its deadline' }]);
  });

  test('detects cross-device delivery: a copy encrypted for another device, or a device not addressed', () => {
    const h = new History();
    sendTo(h, 'm1', [B, C]);
    sendTo(h, 'm2', [B]);
    deliver(h, B, 'm1');
    deliver(h, C, 'm1', { intendedFor: B });
    deliver(h, B, 'm2');
    deliver(h, C, 'm2', { intendedFor: C });
    const { reports, violations } = check(h);
    expect(reports[0]).toMatchObject({ misrouted: 2 });
    expect(violations.filter((v) => v.kind === 'misrouted').map((v) => [v.device, v.clientMessageId])).toEqual([
      [C, 'm1'],
      [C, 'm2'],
    ]);
  });

  test('reports per fault, in the order faults first appear', () => {
    const h = new History();
    sendTo(h, 'a', [B], { fault: 'kill -9 gateway-1' });
    sendTo(h, 'b', [B], { fault: 'redis FLUSHALL' });
    deliver(h, B, 'b');
    const { reports } = check(h);
    expect(reports.map((r) => [r.fault, r.lost])).toEqual([
      ['kill -9 gateway-1', 1],
      ['redis FLUSHALL', 0],
    ]);
  });
});
