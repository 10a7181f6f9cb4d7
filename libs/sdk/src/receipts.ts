import { b64uEncode, randomBytes, type Content } from '@umbra/crypto';
import type { HistoryEntry } from './history';
import type { Messenger, ReceivedMessage } from './messenger';
import { LocalState } from './state/local.state';
import { STATE_KEYS } from './state/state.keys';
import type { KeyValueStore } from './store';

export type ReceiptKind = 'delivered' | 'read';

/** Another account's devices received (or showed) our messages `ids` of conversation `conv`. */
export interface Receipt {
  conv: string;
  from: string;
  kind: ReceiptKind;
  ids: string[];
  at: number;
}

/** At most this many message ids in one Content{k:"rcpt"}; a longer list goes in several. */
export const MAX_RECEIPT_IDS = 100;

/**
 * Delivery and read receipts (§7 Content{k:"rcpt", t:"delivered"|"read", ids, gid?}), end-to-end
 * encrypted to the authors of the messages, with sync copies to our other devices. Read receipts
 * are a setting of this device, on by default: off, none are sent. A receipt is kept on the message
 * it names in the history (`HistoryEntry.receipts`), so it survives a restart and vanishes with it.
 */
export class Receipts {
  private readonly handlers = new Set<(r: Receipt) => void>();

  private constructor(
    private readonly messenger: Messenger,
    private readonly state: LocalState,
    private readEnabled: boolean,
  ) {}

  static async open(messenger: Messenger, store: KeyValueStore): Promise<Receipts> {
    const state = new LocalState(store);
    const r = new Receipts(messenger, state, (await state.get(STATE_KEYS.readReceipts)) ?? true);
    messenger.on('message', (m) => r.received(m));
    return r;
  }

  get readReceipts(): boolean {
    return this.readEnabled;
  }

  async setReadReceipts(on: boolean): Promise<void> {
    await this.state.set(STATE_KEYS.readReceipts, on);
    this.readEnabled = on;
  }

  /** A receipt from a peer (stored on our message) or from our other device (its reads mark ours read). */
  on(event: 'receipt', handler: (r: Receipt) => void): void {
    if (event === 'receipt') this.handlers.add(handler);
  }

  /** Tells the authors of these received messages that this device has them. Returns how many receipts went out. */
  sendDelivered(conv: string, ids: string[]): Promise<number> {
    return this.send('delivered', conv, ids);
  }

  /** Tells the authors that these messages were shown; sends nothing while read receipts are off. */
  sendRead(conv: string, ids: string[]): Promise<number> {
    return this.readEnabled ? this.send('read', conv, ids) : Promise.resolve(0);
  }

  private async send(kind: ReceiptKind, conv: string, ids: string[]): Promise<number> {
    const group = await this.messenger.group(conv);
    const me = this.messenger.client.identity.accountIdText;
    const byAuthor = new Map<string, string[]>();
    for (const id of ids) {
      const e = await this.messenger.history.get(conv, id);
      if (!e || e.outgoing || e.from === me) continue;
      byAuthor.set(e.from, [...(byAuthor.get(e.from) ?? []), id]);
    }
    let sent = 0;
    for (const [author, list] of byAuthor) {
      if (!group && author !== conv) continue;
      for (let i = 0; i < list.length; i += MAX_RECEIPT_IDS) {
        const content: Content = { v: 1, id: b64uEncode(randomBytes(16)), ts: Date.now(), k: 'rcpt', t: kind, ids: list.slice(i, i + MAX_RECEIPT_IDS), ...(group ? { gid: conv } : {}) };
        await this.messenger.sendContent(author, content);
        sent++;
      }
    }
    return sent;
  }

  private async received(m: ReceivedMessage): Promise<void> {
    const c = m.content;
    if (c.k !== 'rcpt' || (c.t !== 'delivered' && c.t !== 'read') || !Array.isArray(c.ids)) return;
    const ids = (c.ids as unknown[]).filter((id): id is string => typeof id === 'string').slice(0, MAX_RECEIPT_IDS);
    const conv = typeof c.gid === 'string' ? c.gid : m.sync ? m.dest : m.from;
    if (!conv) return;
    const kind: ReceiptKind = c.t;
    const at = m.serverTimestamp || c.ts;
    const applied: string[] = [];
    for (const id of ids) {
      const e = await this.messenger.history.get(conv, id);
      if (e && (m.sync ? await this.ownDeviceRead(e, kind) : await this.note(e, m.from, kind, at))) applied.push(id);
    }
    if (applied.length === 0) return;
    const receipt: Receipt = { conv, from: m.from, kind, ids: applied, at };
    for (const h of this.handlers) h(receipt);
  }

  /** Only the authors' messages, and only recipients of them, count. */
  private async note(e: HistoryEntry, from: string, kind: ReceiptKind, at: number): Promise<boolean> {
    const group = await this.messenger.group(e.conv);
    if (!e.outgoing || (group ? !group.members.includes(from) : from !== e.conv)) return false;
    const prev = e.receipts?.[from] ?? {};
    if (prev[kind] !== undefined) return false;
    // A read message was delivered too.
    const next = kind === 'read' ? { delivered: prev.delivered ?? at, read: at } : { ...prev, delivered: at };
    e.receipts = { ...(e.receipts ?? {}), [from]: next };
    return this.messenger.history.add(e);
  }

  /** Our other device showed a message we received: it counts as read here as well. */
  private async ownDeviceRead(e: HistoryEntry, kind: ReceiptKind): Promise<boolean> {
    if (kind !== 'read' || e.outgoing || e.readAt !== undefined) return false;
    return (await this.messenger.history.markRead(e.conv, e.id)) !== undefined;
  }
}
