import { LIMITS, type DeliveredEnvelope } from '@umbra/protocol';
import { DeliveryWindow, envelopeBytes } from './delivery.window';

const envelope = (id: number, contentChars = 10): DeliveredEnvelope => ({
  id: String(id),
  type: 1,
  clientMessageId: 'c',
  senderAccountId: null,
  senderDeviceId: null,
  serverTimestamp: 0,
  expiresAt: 0,
  readTtlS: 0,
  content: 'x'.repeat(contentChars),
});

describe('DeliveryWindow', () => {
  it('holds at most DELIVERY_WINDOW_MESSAGES envelopes', () => {
    const w = new DeliveryWindow();
    for (let i = 1; i <= LIMITS.DELIVERY_WINDOW_MESSAGES; i++) {
      expect(w.fits(envelopeBytes(envelope(i)))).toBe(true);
      w.reserve(envelope(i));
    }
    expect(w.count).toBe(LIMITS.DELIVERY_WINDOW_MESSAGES);
    expect(w.fits(envelopeBytes(envelope(0)))).toBe(false);
    w.release('1');
    expect(w.fits(envelopeBytes(envelope(0)))).toBe(true);
  });

  it('holds at most DELIVERY_WINDOW_BYTES, but one envelope always fits an empty window', () => {
    const w = new DeliveryWindow();
    const huge = envelope(1, LIMITS.DELIVERY_WINDOW_BYTES);
    expect(w.fits(envelopeBytes(huge))).toBe(true);
    w.reserve(huge);
    expect(w.fits(envelopeBytes(envelope(2, 1)))).toBe(false);
    w.release('1');
    const half = envelope(3, LIMITS.DELIVERY_WINDOW_BYTES / 2);
    w.reserve(half);
    expect(w.fits(envelopeBytes(half))).toBe(false);
    expect(w.fits(LIMITS.DELIVERY_WINDOW_BYTES - envelopeBytes(half))).toBe(true);
  });

  it('an ack makes room, unblocks, and remembers the id so it is not pushed twice', () => {
    const w = new DeliveryWindow();
    w.reserve(envelope(1));
    w.reserve(envelope(2));
    w.blocked = true;
    w.acked(['1', '9'], true);
    expect(w.count).toBe(1);
    expect(w.blocked).toBe(false);
    expect(w.known('1')).toBe(true);
    expect(w.known('2')).toBe(true);
    expect(w.known('9')).toBe(false);
    expect(w.inFlightIds()).toEqual(['2']);
  });

  it('an ack of nothing in flight leaves blocked as it was', () => {
    const w = new DeliveryWindow();
    w.blocked = true;
    w.acked(['5'], true);
    expect(w.blocked).toBe(true);
  });

  it('a refused ack (rows not deleted) makes room without remembering the id', () => {
    const w = new DeliveryWindow();
    w.reserve(envelope(1));
    w.acked(['1'], false);
    expect(w.count).toBe(0);
    expect(w.known('1')).toBe(false);
  });

  it('forgets acknowledged ids after SETTLE_MS, oldest first, and keeps at most twice the window', () => {
    const w = new DeliveryWindow();
    const start = Date.now();
    w.reserve(envelope(1));
    w.acked(['1'], true);
    w.sweep(start + 9_000);
    expect(w.known('1')).toBe(true);
    w.sweep(Date.now() + 10_000);
    expect(w.known('1')).toBe(false);

    const max = 2 * LIMITS.DELIVERY_WINDOW_MESSAGES;
    for (let i = 1; i <= max + 1; i++) {
      w.reserve(envelope(i));
      w.acked([String(i)], true);
    }
    expect(w.known('1')).toBe(false);
    expect(w.known('2')).toBe(true);
    expect(w.known(String(max + 1))).toBe(true);
  });

  it('drop (expired, recalled) forgets an id in flight or acknowledged', () => {
    const w = new DeliveryWindow();
    w.reserve(envelope(1));
    w.reserve(envelope(2));
    w.acked(['2'], true);
    w.blocked = true;
    w.drop('1');
    w.drop('2');
    expect(w.count).toBe(0);
    expect(w.blocked).toBe(false);
    expect(w.known('1')).toBe(false);
    expect(w.known('2')).toBe(false);
  });
});
