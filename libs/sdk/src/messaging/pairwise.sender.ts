import { bytesEqual, b64uEncode, concatBytes, encodeContent, envelopeExpiry, ratchetEncrypt, u32, type Content, type DeviceCertificate } from '@umbra/crypto';
import type { SendResult } from '@umbra/protocol';
import { UmbraApiError } from '../errors';
import type { DeviceListsCache } from './device-lists.cache';
import { newId, recordOutgoing, type MessagingContext } from './messaging.context';
import { USER_KINDS } from './messaging.types';
import type { SessionsStore } from './sessions.store';
import type { TimersService } from './timers.service';

interface Target {
  cert: DeviceCertificate;
  account: string;
  body: Uint8Array;
}

type Recipient = { accountId: string; deviceId: number; type: 1 | 2; content: string };

/** How often a send is tried again after the server answered DEVICE_MISMATCH (the lists are refetched each time). */
export const DEVICE_MISMATCH_RETRIES = 3;

/**
 * Pairwise sends (§3–§5, §7): every Content encrypted once per recipient device and per own other
 * device (as a sync copy), sessions started from prekey bundles on first contact, 409 device
 * mismatches resolved by refetching and verifying the device lists.
 */
export class PairwiseSender {
  constructor(
    private readonly ctx: MessagingContext,
    private readonly lists: DeviceListsCache,
    private readonly sessions: SessionsStore,
    private readonly timers: TimersService,
  ) {}

  /** Sends a user-visible Content (text, att, …) under the conversation's timer and records it in the history. */
  async sendUser(peer: string, content: Content): Promise<SendResult> {
    const timer = content.exp === undefined ? await this.timers.get(peer) : null;
    const c: Content = timer ? { ...content, exp: timer } : content;
    const result = await this.send(peer, c);
    if (USER_KINDS.has(c.k)) await recordOutgoing(this.ctx, peer, c, result);
    return result;
  }

  /** Sends one Content to every device of `peer` and a sync copy to our other devices. */
  async send(peer: string, content: Content, freshSessions: Set<string> = new Set(), envelope: { expiresAt?: number; urgent?: boolean } = {}): Promise<SendResult> {
    const clientMessageId = newId();
    for (let attempt = 0; ; attempt++) {
      const targets = await this.targets(peer, content);
      const recipients = await this.ctx.lock.run(() => this.encrypt(targets, freshSessions));
      try {
        // A vanishing message names the attachment it carries, so the servers delete the file with it
        // (only when this account uploaded it: a forwarded pointer is left alone).
        const attachments = content.exp && content.k === 'att' && typeof content.oid === 'string' ? { attachments: [content.oid] } : {};
        const expiry = content.exp ? envelopeExpiry(content) : envelope.expiresAt !== undefined ? { expiresAt: envelope.expiresAt } : {};
        const urgent = envelope.urgent ? { urgent: true } : {};
        return await this.ctx.client.send({ clientMessageId, recipients, ...expiry, ...attachments, ...urgent });
      } catch (err) {
        if (err instanceof UmbraApiError && err.code === 'DEVICE_MISMATCH' && attempt < DEVICE_MISMATCH_RETRIES) continue;
        throw err;
      }
    }
  }

  /** Every device of `peer` but this one, and (to another account) our other devices with a sync copy. */
  private async targets(peer: string, content: Content): Promise<Target[]> {
    const me = this.ctx.client.identity;
    const peerList = await this.lists.fetch(peer);
    const toSelf = bytesEqual(peerList.accountId, me.accountId);
    const own = toSelf ? peerList : await this.lists.fetch(me.accountIdText);
    const targets: Target[] = [];
    for (const cert of peerList.devices) {
      if (toSelf && cert.deviceId === me.device.deviceId) continue;
      targets.push({ cert, account: peer, body: encodeContent(content) });
    }
    if (!toSelf) {
      const sync = encodeContent({ v: 1, id: content.id, ts: content.ts, k: 'sync', dest: peer, inner: content });
      for (const cert of own.devices) if (cert.deviceId !== me.device.deviceId) targets.push({ cert, account: me.accountIdText, body: sync });
    }
    return targets;
  }

  /** Encrypts each target's body with its session, starting one from a fetched bundle where there is none (or `freshSessions` names it). */
  private async encrypt(targets: Target[], freshSessions: Set<string>): Promise<Recipient[]> {
    const out: Recipient[] = [];
    const fresh = (t: Target) => freshSessions.has(`${t.account}:${t.cert.deviceId}`);
    const needBundles = new Set<string>();
    for (const t of targets) if (fresh(t) || !(await this.sessions.active(t.cert))) needBundles.add(t.account);
    const bundles = new Map<string, Map<number, string>>();
    for (const account of needBundles) {
      const res = await this.ctx.client.fetchBundles(account);
      bundles.set(account, new Map(res.bundles.map((b) => [b.deviceId, b.bundle])));
    }
    for (const t of targets) {
      let state = fresh(t) ? undefined : await this.sessions.active(t.cert);
      const isNew = !state;
      if (!state) {
        const raw = bundles.get(t.account)?.get(t.cert.deviceId);
        if (!raw) throw new UmbraApiError(409, 'DEVICE_MISMATCH', `device ${t.cert.deviceId} of ${t.account} has no prekeys yet`);
        state = this.sessions.start(t.cert, raw);
      }
      const enc = ratchetEncrypt(state, t.body, this.ctx.now());
      // Persist before sending: a reused message key would repeat a GCM nonce.
      await this.sessions.save(t.cert, enc.state, isNew);
      const wire = enc.state.pendingPrekey ? concatBytes(enc.state.pendingPrekey, u32(enc.message.length), enc.message) : enc.message;
      out.push({ accountId: t.account, deviceId: t.cert.deviceId, type: enc.state.pendingPrekey ? 1 : 2, content: b64uEncode(wire) });
    }
    return out;
  }
}
