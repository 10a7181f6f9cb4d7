/**
 * A Jepsen-style history of one fault-injection run: every send (client message id, recipients,
 * deadline, whether the server said "stored") and every receipt (which device got which envelope,
 * when, and whether the SDK showed it or dropped it as a duplicate). `check` turns the history into
 * counts and invariant violations; it knows nothing about how the history was produced.
 */

/** `<accountId>:<deviceId>`: one device. */
export type DeviceKey = string;

export interface SendOp {
  fault: string;
  sender: DeviceKey;
  clientMessageId: string;
  recipients: DeviceKey[];
  /** Absolute deadline of a vanishing message (ms since the epoch); 0 = none. */
  expiresAt: number;
  sentAt: number;
  /** Set when the server answered "stored" (a duplicate answer counts: the first one stored it). */
  ackedAt?: number;
}

export interface ReceiveOp {
  /** The device whose socket got the envelope. */
  device: DeviceKey;
  sender: DeviceKey;
  clientMessageId: string;
  /** The device the sender encrypted this copy for (carried inside the content). */
  intendedFor: DeviceKey;
  expiresAt: number;
  at: number;
}

export interface ShowOp {
  device: DeviceKey;
  sender: DeviceKey;
  clientMessageId: string;
}

export interface FaultReport {
  fault: string;
  sent: number;
  acked: number;
  /** Distinct (message, recipient device) pairs received. */
  delivered: number;
  /** Receipts the SDK dropped as already seen. */
  duplicatesSuppressed: number;
  /** Acknowledged (message, recipient device) pairs never received (vanished ones whose deadline passed excepted). */
  lost: number;
  /** Acknowledged vanishing pairs not received before their deadline passed: allowed, counted. */
  expiredUndelivered: number;
  shownTwice: number;
  lateVanished: number;
  misrouted: number;
}

export interface Violation {
  kind: 'lost' | 'shown-twice' | 'late-vanished' | 'misrouted';
  fault: string;
  device: DeviceKey;
  sender: DeviceKey;
  clientMessageId: string;
  detail?: string;
}

export interface CheckOptions {
  /** The time of the check; a vanishing pair whose deadline is before it may be missing. */
  now: number;
  /** How long after its deadline a vanishing envelope may still arrive (the push was in flight). */
  lateGraceMs: number;
}

const msgKey = (sender: DeviceKey, id: string) => `${sender}|${id}`;

export class History {
  readonly sends: SendOp[] = [];
  readonly receipts: ReceiveOp[] = [];
  readonly shown: ShowOp[] = [];
  private readonly byKey = new Map<string, SendOp>();

  send(op: Omit<SendOp, 'ackedAt'>): SendOp {
    const rec: SendOp = { ...op };
    this.sends.push(rec);
    this.byKey.set(msgKey(op.sender, op.clientMessageId), rec);
    return rec;
  }

  acked(op: SendOp, at: number): void {
    op.ackedAt ??= at;
  }

  receive(op: ReceiveOp): void {
    this.receipts.push(op);
  }

  show(op: ShowOp): void {
    this.shown.push(op);
  }

  faults(): string[] {
    return [...new Set(this.sends.map((s) => s.fault))];
  }

  /** One report per fault (in the order faults first appear) and every violation found. */
  check(opts: CheckOptions): { reports: FaultReport[]; violations: Violation[] } {
    const violations: Violation[] = [];
    const reports = new Map<string, FaultReport>();
    const report = (fault: string): FaultReport => {
      let r = reports.get(fault);
      if (!r) {
        r = { fault, sent: 0, acked: 0, delivered: 0, duplicatesSuppressed: 0, lost: 0, expiredUndelivered: 0, shownTwice: 0, lateVanished: 0, misrouted: 0 };
        reports.set(fault, r);
      }
      return r;
    };
    for (const f of this.faults()) report(f);
    const faultOf = (sender: DeviceKey, id: string) => this.byKey.get(msgKey(sender, id))?.fault ?? '(unknown send)';

    const received = new Set<string>();
    const receiptCount = new Map<string, number>();
    for (const r of this.receipts) {
      const k = `${r.device}|${msgKey(r.sender, r.clientMessageId)}`;
      received.add(k);
      receiptCount.set(k, (receiptCount.get(k) ?? 0) + 1);
      const send = this.byKey.get(msgKey(r.sender, r.clientMessageId));
      const fault = send?.fault ?? '(unknown send)';
      if (r.intendedFor !== r.device || (send && !send.recipients.includes(r.device))) {
        report(fault).misrouted++;
        violations.push({ kind: 'misrouted', fault, device: r.device, sender: r.sender, clientMessageId: r.clientMessageId, detail: `encrypted for ${r.intendedFor}` });
      }
      const deadline = send?.expiresAt || r.expiresAt;
      if (deadline > 0 && r.at > deadline + opts.lateGraceMs) {
        report(fault).lateVanished++;
        violations.push({ kind: 'late-vanished', fault, device: r.device, sender: r.sender, clientMessageId: r.clientMessageId, detail: `${r.at - deadline} ms after its deadline` });
      }
    }
    const shownCount = new Map<string, number>();
    for (const s of this.shown) {
      const k = `${s.device}|${msgKey(s.sender, s.clientMessageId)}`;
      const n = (shownCount.get(k) ?? 0) + 1;
      shownCount.set(k, n);
      if (n === 2) {
        const fault = faultOf(s.sender, s.clientMessageId);
        report(fault).shownTwice++;
        violations.push({ kind: 'shown-twice', fault, device: s.device, sender: s.sender, clientMessageId: s.clientMessageId });
      }
    }
    for (const [k, n] of receiptCount) {
      const shownTimes = shownCount.get(k) ?? 0;
      const [device, sender, id] = k.split('|') as [string, string, string];
      void device;
      report(faultOf(sender, id)).duplicatesSuppressed += Math.max(0, n - shownTimes);
    }

    for (const s of this.sends) {
      const r = report(s.fault);
      r.sent++;
      for (const device of s.recipients) {
        if (received.has(`${device}|${msgKey(s.sender, s.clientMessageId)}`)) r.delivered++;
      }
      if (s.ackedAt === undefined) continue;
      r.acked++;
      for (const device of s.recipients) {
        if (received.has(`${device}|${msgKey(s.sender, s.clientMessageId)}`)) continue;
        if (s.expiresAt > 0 && s.expiresAt <= opts.now) {
          r.expiredUndelivered++;
          continue;
        }
        r.lost++;
        violations.push({ kind: 'lost', fault: s.fault, device, sender: s.sender, clientMessageId: s.clientMessageId });
      }
    }
    return { reports: [...reports.values()], violations };
  }
}
