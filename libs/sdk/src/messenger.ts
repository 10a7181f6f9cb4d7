import {
  CryptoError,
  PREKEY_KIND,
  accountIdOf,
  addr,
  b64uDecode,
  b64uEncode,
  bytesEqual,
  checkDeviceListUpdate,
  concatBytes,
  decodeAccountId,
  decodeContent,
  deserializeRatchetState,
  encodeContent,
  envelopeExpiry,
  encodePreKeyMessage,
  hexEncode,
  initInitiator,
  initResponder,
  parseDeviceCertificate,
  parsePreKeyBundle,
  parsePreKeyMessage,
  parseSignedDeviceList,
  pqxdhInitiate,
  pqxdhRespond,
  randomBytes,
  ratchetDecrypt,
  ratchetEncrypt,
  safetyNumber,
  serializeRatchetState,
  u32,
  verifyBundle,
  verifySignedDeviceList,
  chainFromSkdm,
  deserializeSenderChain,
  newSenderChain,
  parseSenderKeyMessage,
  senderKeyDecrypt,
  senderKeyEncrypt,
  serializeSenderChain,
  skdmOf,
  type Content,
  type SenderChain,
  type DeviceCertificate,
  type RatchetState,
  type SignedDeviceList,
} from '@umbra/crypto';
import { ml_kem1024 } from '@noble/post-quantum/ml-kem.js';
import { ExpiryReceiptSchema, NoticeType, type DeliveredEnvelope, type ExpiryReceipt, type RecallResult, type SendResult } from '@umbra/protocol';
import type { UmbraClient } from './client';
import { UmbraApiError } from './errors';
import { History, type HistoryEntry, type Timer } from './history';
import { Mutex } from './mutex';
import { StoreTransaction, type KeyValueStore } from './store';

export interface ReceivedMessage {
  /** Sending account ("um1…") and device. */
  from: string;
  fromDevice: number;
  content: Content;
  /** True for copies of our own messages sent from another of our devices ("sync"). */
  sync: boolean;
  /** The sending device is in its account's current, verified device list. */
  verified: boolean;
  serverTimestamp: number;
  /** For sync copies: the account our other device sent it to. */
  dest?: string;
  /** The envelope it arrived in (server id and clientMessageId). */
  envelopeId?: string;
  clientMessageId?: string;
  /** The conversation: the peer account, or the group id. */
  conv?: string;
  /** When this device deletes it (vanishing messages), or null. */
  deleteAt?: number | null;
}

interface SessionRecord {
  active: string;
  archived: string[];
}

const MAX_ARCHIVED = 40;
const SESSION = (peerHex: string, device: number) => `session/${peerHex}/${device}`;
const LIST = (acctHex: string) => `list/${acctHex}`;
const SEEN = 'seen-content';
const GROUP = (gid: string) => `group/${gid}`;
const OWN_CHAIN = (gid: string) => `skchain/own/${gid}`;
const IN_CHAIN = (senderHex: string, device: number, gid: string, epoch: number, chainId: number) => `skchain/in/${senderHex}/${device}/${gid}/${epoch}/${chainId}`;
const TIMER = (conv: string) => `timer/${conv}`;
const REKEY_AFTER_MS = 7 * 86_400_000;
const REKEY_AFTER_MESSAGES = 1000;
/**
 * Content kinds that are shown to the user, kept in the history and carry the conversation's timer;
 * the rest are control. Call signalling (k:"call") is not one: it never changes a timer and is never stored.
 */
const USER_KINDS = new Set(['text', 'att']);
/** Kinds that change an earlier message (its author's, for edit and del) instead of being one. */
const ANNOTATION_KINDS = new Set(['react', 'edit', 'del']);

/** Group state under the single-writer admin model of §6. */
export interface GroupState {
  gid: string;
  epoch: number;
  admin: string;
  members: string[];
  /** The name the admin gave it (shown by clients; members learn it with the membership). */
  name?: string;
}

interface OwnChainRecord {
  chain: string;
  /** "account:device" of every device that has this chain. */
  distributed: string[];
}

/**
 * End-to-end encryption over UmbraClient (PROTOCOL.md §3–§5, §7): one ratchet session per peer
 * device, created from a prekey bundle on first contact; every message encrypted once per recipient
 * device and per own other device; 409 device mismatches resolved by refetching and verifying the
 * device lists. The server only ever sees the ciphertext.
 */
export class Messenger {
  private readonly lock = new Mutex();
  private readonly handlers = new Set<(m: ReceivedMessage) => void | Promise<void>>();
  private readonly errorHandlers = new Set<(err: unknown, env: DeliveredEnvelope) => void>();
  private seen: string[] = [];
  private readonly retryHandlers = new Set<(r: { from: string; device: number; failedClientMessageId?: string }) => void>();
  private readonly receiptHandlers = new Set<(r: ExpiryReceipt) => void>();
  private readonly timerHandlers = new Set<(conv: string, timer: Timer | null) => void>();

  private constructor(
    readonly client: UmbraClient,
    private readonly store: KeyValueStore,
    private readonly now: () => number,
    /** This device's message history, with vanishing timers enforced (§8). */
    readonly history: History,
  ) {}

  static async open(client: UmbraClient, store: KeyValueStore, now: () => number = () => Date.now()): Promise<Messenger> {
    const m = new Messenger(client, store, now, await History.open(store, now));
    m.seen = JSON.parse((await store.get(SEEN)) ?? '[]') as string[];
    client.on('message', (env) => m.receive(env));
    client.on('expired', async (ev) => {
      await m.history.deleteByEnvelopes(ev.messages.map((r) => `${r.senderAccountId}:${r.senderDeviceId}:${r.clientMessageId}`));
    });
    client.on('recalled', async (ev) => {
      await m.history.deleteByEnvelopes(ev.messages.map((r) => `${r.senderAccountId}:${r.senderDeviceId}:${r.clientMessageId}`));
    });
    return m;
  }

  /** The vanishing timer of a conversation (peer account or group id), or null. */
  async timer(conv: string): Promise<Timer | null> {
    const raw = await this.store.get(TIMER(conv));
    return raw ? (JSON.parse(raw) as Timer) : null;
  }

  /**
   * Sets the conversation timer (§8) and tells the peer with an E2EE Content{k:"exp_set"}; every
   * later message carries it inside the ciphertext and in the envelope for the servers.
   */
  async setTimer(peer: string, timer: Timer | null): Promise<SendResult> {
    await this.saveTimer(peer, timer);
    return this.sendContent(peer, { v: 1, id: b64uEncode(randomBytes(16)), ts: this.now(), k: 'exp_set', t: timer?.t ?? 0, m: timer?.m ?? 'send' });
  }

  /** Sets a group's timer and tells every member (pairwise E2EE `exp_set` with the group id); any member may. */
  async setGroupTimer(gid: string, timer: Timer | null): Promise<void> {
    const state = await this.group(gid);
    if (!state) throw new Error('unknown group');
    await this.saveTimer(gid, timer);
    const me = this.client.identity.accountIdText;
    const content: Content = { v: 1, id: b64uEncode(randomBytes(16)), ts: this.now(), k: 'exp_set', gid, t: timer?.t ?? 0, m: timer?.m ?? 'send' };
    for (const member of state.members) if (member !== me) await this.sendContent(member, content);
  }

  /** Marks a received message as displayed: a read-mode timer starts, here and for the copy the server may still hold. */
  async markRead(conv: string, id: string): Promise<HistoryEntry | undefined> {
    const e = await this.history.markRead(conv, id);
    if (e?.envelopeId && e.content.exp?.m === 'read') await this.client.markRead([e.envelopeId]).catch(() => undefined);
    return e;
  }

  private async saveTimer(conv: string, timer: Timer | null, kv: KeyValueStore = this.store): Promise<void> {
    const raw = await kv.get(TIMER(conv));
    const current = raw ? (JSON.parse(raw) as Timer) : null;
    if (JSON.stringify(current) === JSON.stringify(timer)) return;
    if (timer) await kv.set(TIMER(conv), JSON.stringify(timer));
    else await kv.delete(TIMER(conv));
    for (const h of this.timerHandlers) h(conv, timer);
  }

  on(event: 'message', handler: (m: ReceivedMessage) => void | Promise<void>): void;
  on(event: 'error', handler: (err: unknown, env: DeliveredEnvelope) => void): void;
  /** A peer could not decrypt one of our messages and started a new session; resend if it matters. */
  on(event: 'retry', handler: (r: { from: string; device: number; failedClientMessageId?: string }) => void): void;
  /** One of our messages vanished before any device of these accounts received it. */
  on(event: 'expiryReceipt', handler: (r: ExpiryReceipt) => void): void;
  /** A conversation's timer changed (set here, by the peer's exp_set, or adopted from a message). */
  on(event: 'timer', handler: (conv: string, timer: Timer | null) => void): void;
  on(event: 'message' | 'error' | 'retry' | 'expiryReceipt' | 'timer', handler: unknown): void {
    if (event === 'message') this.handlers.add(handler as (m: ReceivedMessage) => void);
    else if (event === 'error') this.errorHandlers.add(handler as (err: unknown, env: DeliveredEnvelope) => void);
    else if (event === 'expiryReceipt') this.receiptHandlers.add(handler as (r: ExpiryReceipt) => void);
    else if (event === 'timer') this.timerHandlers.add(handler as (conv: string, timer: Timer | null) => void);
    else this.retryHandlers.add(handler as (r: { from: string; device: number; failedClientMessageId?: string }) => void);
  }

  /**
   * Fetches, verifies and caches an account's device list (rollback and equivocation checked). The
   * list must be in the key-transparency log (§12): a KtVerificationError stops the caller — a send
   * to that account encrypts nothing.
   */
  async deviceList(accountIdText: string): Promise<SignedDeviceList> {
    const { deviceList: list } = await this.client.verifiedAccount(accountIdText);
    if (!bytesEqual(list.accountId, decodeAccountId(accountIdText))) throw new CryptoError('MALFORMED', 'device list of another account');
    const key = LIST(hexEncode(list.accountId));
    const cachedRaw = await this.store.get(key);
    if (cachedRaw) checkDeviceListUpdate(parseSignedDeviceList(b64uDecode(cachedRaw)), list);
    await this.store.set(key, b64uEncode(list.bytes));
    return list;
  }

  safetyNumber(peerAik: Uint8Array): ReturnType<typeof safetyNumber> {
    return safetyNumber(this.client.identity.aik, peerAik);
  }

  /** Sends a text under the conversation's timer (unless `extra.exp` says otherwise) and keeps it in the history. */
  async sendText(peer: string, text: string, extra: Partial<Content> = {}): Promise<SendResult> {
    return this.sendUserContent(peer, { v: 1, id: b64uEncode(randomBytes(16)), ts: this.now(), k: 'text', text, ...extra });
  }

  /** Sends a user-visible Content (text, att, …) under the conversation's timer and records it in the history. */
  async sendUserContent(peer: string, content: Content): Promise<SendResult> {
    const timer = content.exp === undefined ? await this.timer(peer) : null;
    const c: Content = timer ? { ...content, exp: timer } : content;
    const result = await this.sendContent(peer, c);
    const me = this.client.identity;
    if (USER_KINDS.has(c.k)) await this.history.add({
      conv: peer, id: c.id, from: me.accountIdText, fromDevice: me.device.deviceId, outgoing: true,
      content: c, serverTimestamp: result.serverTimestamp, receivedAt: this.now(), deleteAt: History.deadline(c, result.serverTimestamp, this.now(), true),
      envelope: `${me.accountIdText}:${me.device.deviceId}:${result.clientMessageId}`,
    });
    return result;
  }

  /** Sends one Content to every device of `peer` and a sync copy to our other devices. */
  async sendContent(peer: string, content: Content, freshSessions: Set<string> = new Set()): Promise<SendResult> {
    const clientMessageId = b64uEncode(randomBytes(16));
    const me = this.client.identity;
    for (let attempt = 0; ; attempt++) {
      const peerList = await this.deviceList(peer);
      const own = bytesEqual(peerList.accountId, me.accountId) ? peerList : await this.deviceList(me.accountIdText);
      const targets: { cert: DeviceCertificate; account: string; body: Uint8Array }[] = [];
      for (const cert of peerList.devices) {
        if (bytesEqual(peerList.accountId, me.accountId) && cert.deviceId === me.device.deviceId) continue;
        targets.push({ cert, account: peer, body: encodeContent(content) });
      }
      if (!bytesEqual(peerList.accountId, me.accountId)) {
        const sync = encodeContent({ v: 1, id: content.id, ts: content.ts, k: 'sync', dest: peer, inner: content });
        for (const cert of own.devices) if (cert.deviceId !== me.device.deviceId) targets.push({ cert, account: me.accountIdText, body: sync });
      }
      const recipients = await this.lock.run(async () => {
        const out: { accountId: string; deviceId: number; type: 1 | 2; content: string }[] = [];
        const needBundles = new Set<string>();
        const fresh = (t: { account: string; cert: DeviceCertificate }) => freshSessions.has(`${t.account}:${t.cert.deviceId}`);
        for (const t of targets) if (fresh(t) || !(await this.loadSession(t.cert))) needBundles.add(t.account);
        const bundles = new Map<string, Map<number, string>>();
        for (const account of needBundles) {
          const res = await this.client.fetchBundles(account);
          bundles.set(account, new Map(res.bundles.map((b) => [b.deviceId, b.bundle])));
        }
        for (const t of targets) {
          let state = fresh(t) ? undefined : await this.loadSession(t.cert);
          const isNew = !state;
          if (!state) {
            const raw = bundles.get(t.account)?.get(t.cert.deviceId);
            if (!raw) throw new UmbraApiError(409, 'DEVICE_MISMATCH', `device ${t.cert.deviceId} of ${t.account} has no prekeys yet`);
            state = this.startSession(t.cert, raw);
          }
          const enc = ratchetEncrypt(state, t.body, this.now());
          // Persist before sending: a reused message key would repeat a GCM nonce.
          await this.saveSession(t.cert, enc.state, isNew);
          const wire = enc.state.pendingPrekey ? concatBytes(enc.state.pendingPrekey, u32(enc.message.length), enc.message) : enc.message;
          out.push({ accountId: t.account, deviceId: t.cert.deviceId, type: enc.state.pendingPrekey ? 1 : 2, content: b64uEncode(wire) });
        }
        return out;
      });
      try {
        // A vanishing message names the attachment it carries, so the servers delete the file with it
        // (only when this account uploaded it: a forwarded pointer is left alone).
        const attachments = content.exp && content.k === 'att' && typeof content.oid === 'string' ? { attachments: [content.oid] } : {};
        return await this.client.send({ clientMessageId, recipients, ...(content.exp ? envelopeExpiry(content) : {}), ...attachments });
      } catch (err) {
        if (err instanceof UmbraApiError && err.code === 'DEVICE_MISMATCH' && attempt < 3) continue;
        throw err;
      }
    }
  }

  /**
   * Delete for everyone: our own message `id` in conversation `conv` (peer account or group id). When
   * this device sent it, its still-queued copies are recalled first (a device that was offline never
   * receives the ciphertext); then an E2EE Content{k:"del", target} tells every device that already has
   * it (the peer's or members', and our others) to delete it. Returns how many copies were recalled.
   */
  async deleteForEveryone(conv: string, id: string): Promise<{ recalled: number }> {
    const me = this.client.identity;
    const entry = await this.history.get(conv, id);
    if (!entry) throw new Error('no such message in this conversation on this device');
    if (entry.from !== me.accountIdText) throw new Error('only your own messages can be deleted for everyone');
    const [account, device, clientMessageId] = entry.envelope?.split(':') ?? [];
    const recalled = account === me.accountIdText && Number(device) === me.device.deviceId && clientMessageId ? (await this.recall(conv, clientMessageId)).recalled : 0;
    await this.sendAnnotation(conv, { v: 1, id: b64uEncode(randomBytes(16)), ts: this.now(), k: 'del', target: id });
    await this.history.delete(conv, id);
    return { recalled };
  }

  /**
   * Recalls the still-queued copies of this device's send `clientMessageId` in conversation `conv`:
   * the request names the accounts it went to (the group's current members, or the peer, and ours),
   * so the server deletes within their queues only.
   */
  async recall(conv: string, clientMessageId: string): Promise<RecallResult> {
    const me = this.client.identity.accountIdText;
    const group = await this.group(conv);
    return this.client.recall(clientMessageId, [...new Set([me, ...(group ? group.members : [conv])])]);
  }

  /**
   * Replies to message `id` of the conversation: a text whose Content carries `reply: {id, from, text}`
   * (the quoted message's id, author and up to 200 characters of its text, so every device can show
   * the quote even without the original).
   */
  async reply(conv: string, id: string, text: string): Promise<SendResult> {
    const quoted = await this.history.get(conv, id);
    if (!quoted) throw new Error('no such message in this conversation on this device');
    const reply = { id, from: quoted.from, ...(typeof quoted.content.text === 'string' ? { text: quoted.content.text.slice(0, 200) } : {}) };
    return (await this.group(conv)) ? this.sendGroupText(conv, text, { reply }) : this.sendText(conv, text, { reply });
  }

  /** Reacts to message `id` with an emoji (one reaction per account; `null` removes ours). */
  async react(conv: string, id: string, emoji: string | null): Promise<void> {
    if (!(await this.history.get(conv, id))) throw new Error('no such message in this conversation on this device');
    const content: Content = { v: 1, id: b64uEncode(randomBytes(16)), ts: this.now(), k: 'react', target: id, emoji: emoji ?? '' };
    await this.sendAnnotation(conv, content);
    await this.annotate({ from: this.client.identity.accountIdText, content, conv }, this.store);
  }

  /** Replaces the text of our own message `id`; every device keeps the latest edit (by its ts, then id). */
  async edit(conv: string, id: string, text: string): Promise<void> {
    const entry = await this.history.get(conv, id);
    if (!entry) throw new Error('no such message in this conversation on this device');
    if (entry.from !== this.client.identity.accountIdText) throw new Error('only your own messages can be edited');
    const content: Content = { v: 1, id: b64uEncode(randomBytes(16)), ts: this.now(), k: 'edit', target: id, text };
    await this.sendAnnotation(conv, content);
    await this.annotate({ from: this.client.identity.accountIdText, content, conv }, this.store);
  }

  /** Sends a react/edit/del to the conversation: the peer's devices, or pairwise to every group member; sync copies to ours. */
  private async sendAnnotation(conv: string, content: Content): Promise<void> {
    const me = this.client.identity.accountIdText;
    const group = await this.group(conv);
    if (!group) {
      await this.sendContent(conv, content);
      return;
    }
    // Our other devices get one sync copy per member and apply the first (same Content.id).
    for (const m of group.members) if (m !== me) await this.sendContent(m, { ...content, gid: conv });
  }

  /**
   * Applies a react, edit or del to its target in the history: del and edit only from the target's
   * author; an edit or reaction older than the one kept (ts, then Content.id) changes nothing.
   */
  private async annotate(msg: { from: string; content: Content; conv: string }, kv: KeyValueStore): Promise<void> {
    const c = msg.content;
    const target = typeof c.target === 'string' ? await this.history.get(msg.conv, c.target) : undefined;
    if (!target) return;
    const newer = (prev: { ts: number; id: string } | undefined) => !prev || c.ts > prev.ts || (c.ts === prev.ts && c.id > prev.id);
    if (c.k === 'del') {
      if (target.from === msg.from) await this.history.delete(msg.conv, target.id);
      return;
    }
    if (c.k === 'edit') {
      if (target.from !== msg.from || typeof c.text !== 'string' || !newer(target.edited)) return;
      target.edited = { text: c.text, ts: c.ts, id: c.id };
    } else {
      const emoji = typeof c.emoji === 'string' ? c.emoji : '';
      const reactions = { ...(target.reactions ?? {}) };
      if (!newer(reactions[msg.from])) return;
      reactions[msg.from] = { emoji, ts: c.ts, id: c.id };
      target.reactions = reactions;
    }
    await this.history.add(target, kv);
  }

  /** The message of ours (this device's send) with this clientMessageId, if the history still has it. */
  findOwnSend(clientMessageId: string): Promise<HistoryEntry | undefined> {
    const me = this.client.identity;
    return this.history.findByEnvelope(`${me.accountIdText}:${me.device.deviceId}:${clientMessageId}`);
  }

  async group(gid: string): Promise<GroupState | undefined> {
    const raw = await this.store.get(GROUP(gid));
    return raw ? (JSON.parse(raw) as GroupState) : undefined;
  }

  /** Creates a group with us as admin; members learn it (and its name) from an E2EE "grp" message. Returns the group id. */
  async createGroup(members: string[], name?: string): Promise<string> {
    const me = this.client.identity.accountIdText;
    const state: GroupState = { gid: b64uEncode(randomBytes(32)), epoch: 0, admin: me, members: [me, ...new Set(members.filter((m) => m !== me))], ...(name ? { name } : {}) };
    await this.publishGroup(state, state.members);
    return state.gid;
  }

  async addMember(gid: string, member: string): Promise<GroupState> {
    const state = await this.ownedGroup(gid);
    if (state.members.includes(member)) return state;
    const next = { ...state, epoch: state.epoch + 1, members: [...state.members, member] };
    await this.publishGroup(next, next.members);
    return next;
  }

  /** Removes a member: a new epoch, so the next send rekeys and the removed member gets no new chain. */
  async removeMember(gid: string, member: string): Promise<GroupState> {
    const state = await this.ownedGroup(gid);
    const next = { ...state, epoch: state.epoch + 1, members: state.members.filter((m) => m !== member) };
    await this.publishGroup(next, [...next.members, member]);
    return next;
  }

  private async ownedGroup(gid: string): Promise<GroupState> {
    const state = await this.group(gid);
    if (!state) throw new Error('unknown group');
    if (state.admin !== this.client.identity.accountIdText) throw new Error('only the group admin changes membership');
    return state;
  }

  private async publishGroup(state: GroupState, tell: string[]): Promise<void> {
    await this.store.set(GROUP(state.gid), JSON.stringify(state));
    const me = this.client.identity.accountIdText;
    const content: Content = { v: 1, id: b64uEncode(randomBytes(16)), ts: this.now(), k: 'grp', gid: state.gid, epoch: state.epoch, admin: state.admin, members: state.members, ...(state.name ? { name: state.name } : {}) };
    for (const member of tell) if (member !== me) await this.sendContent(member, content);
  }

  /**
   * Sends to a group with our sender-key chain: the chain is created or replaced when the epoch
   * changed, a member device was dropped, or it is 7 days or 1000 messages old (§6 rekey rules),
   * handed to every member device that lacks it as a pairwise SKDM, then one SenderKeyMessage
   * goes to all member devices and our other devices.
   */
  async sendGroupText(gid: string, text: string, extra: Partial<Content> = {}): Promise<SendResult> {
    return this.sendGroupContent(gid, { v: 1, id: b64uEncode(randomBytes(16)), ts: this.now(), k: 'text', text, ...extra });
  }

  /** Sends a user-visible Content to the group under its timer and records it in the history (sendGroupText's path). */
  async sendGroupContent(gid: string, input: Content): Promise<SendResult> {
    const state = await this.group(gid);
    if (!state) throw new Error('unknown group');
    const me = this.client.identity;
    const self = parseDeviceCertificate(me.device.certificate);
    const timer = await this.timer(gid);
    const groupContent: Content = { ...input, gid, ...(timer ? { exp: timer } : {}) };
    const content = encodeContent(groupContent);
    const expiry = timer ? envelopeExpiry(groupContent) : {};
    const clientMessageId = b64uEncode(randomBytes(16));
    for (let attempt = 0; ; attempt++) {
      const lists = new Map<string, SignedDeviceList>();
      for (const m of new Set([...state.members, me.accountIdText])) lists.set(m, await this.deviceList(m));
      const targets: { account: string; deviceId: number }[] = [];
      for (const [account, list] of lists) {
        for (const d of list.devices) if (!(account === me.accountIdText && d.deviceId === me.device.deviceId)) targets.push({ account, deviceId: d.deviceId });
      }
      const current = new Set(targets.map((t) => `${t.account}:${t.deviceId}`));
      const stored = await this.loadOwnChain(gid);
      let chain: SenderChain | undefined = stored ? deserializeSenderChain(stored.chain) : undefined;
      let distributed = stored?.distributed ?? [];
      const dropped = distributed.some((d) => !current.has(d));
      if (!chain || chain.epoch !== state.epoch || dropped || this.now() - chain.created > REKEY_AFTER_MS || chain.sent >= REKEY_AFTER_MESSAGES) {
        chain = newSenderChain(b64uDecode(gid), state.epoch, this.now());
        distributed = [];
      }
      const missing = new Set(targets.filter((t) => !distributed.includes(`${t.account}:${t.deviceId}`)).map((t) => t.account));
      const skdm: Content = { v: 1, id: b64uEncode(randomBytes(16)), ts: this.now(), k: 'skdm', ...skdmOf(chain) };
      for (const account of missing) await this.sendContent(account, skdm);
      distributed = [...current];
      const enc = senderKeyEncrypt(chain, addr(self), content);
      await this.store.set(OWN_CHAIN(gid), JSON.stringify({ chain: serializeSenderChain(enc.chain), distributed } satisfies OwnChainRecord));
      const body = b64uEncode(enc.message);
      try {
        const result = await this.client.send({ clientMessageId, recipients: targets.map((t) => ({ accountId: t.account, deviceId: t.deviceId, type: 3 as const, content: body })), ...expiry });
        if (USER_KINDS.has(groupContent.k)) {
          await this.history.add({
            conv: gid, id: groupContent.id, from: me.accountIdText, fromDevice: me.device.deviceId, outgoing: true,
            content: groupContent, serverTimestamp: result.serverTimestamp, receivedAt: this.now(), deleteAt: History.deadline(groupContent, result.serverTimestamp, this.now(), true),
            envelope: `${me.accountIdText}:${me.device.deviceId}:${result.clientMessageId}`,
          });
        }
        return result;
      } catch (err) {
        if (err instanceof UmbraApiError && err.code === 'DEVICE_MISMATCH' && attempt < 3) continue;
        throw err;
      }
    }
  }

  private async loadOwnChain(gid: string): Promise<OwnChainRecord | undefined> {
    const raw = await this.store.get(OWN_CHAIN(gid));
    return raw ? (JSON.parse(raw) as OwnChainRecord) : undefined;
  }

  /** Control contents (SKDM, group state) are applied here and not shown as messages. */
  private async applyControl(msg: ReceivedMessage, kv: KeyValueStore): Promise<boolean> {
    const c = msg.content;
    if (c.k === 'skdm') {
      const chain = chainFromSkdm(c as never, this.now());
      const gid = b64uEncode(chain.gid);
      await kv.set(IN_CHAIN(hexEncode(decodeAccountId(msg.from)), msg.fromDevice, gid, chain.epoch, chain.chainId), serializeSenderChain(chain));
      return true;
    }
    if (c.k === 'exp_set') {
      if (typeof c.gid === 'string' && !(await this.group(c.gid))?.members.includes(msg.from)) return true;
      const conv = typeof c.gid === 'string' ? c.gid : msg.sync ? msg.dest : msg.from;
      const t = typeof c.t === 'number' && Number.isInteger(c.t) && c.t >= 1 && c.t <= 0xffff_ffff ? c.t : 0;
      if (conv) await this.saveTimer(conv, t > 0 ? { t, m: c.m === 'read' ? 'read' : 'send' } : null, kv);
      return true;
    }
    if (ANNOTATION_KINDS.has(c.k)) {
      // The app hears these (to update its view) after the history has them.
      const conv = typeof c.gid === 'string' ? c.gid : msg.sync ? msg.dest : msg.from;
      msg.conv = conv;
      if (conv) await this.annotate({ from: msg.from, content: c, conv }, kv);
      return false;
    }
    if (c.k === 'retry') {
      for (const h of this.retryHandlers) h({ from: msg.from, device: msg.fromDevice, failedClientMessageId: typeof c.failed === 'string' ? c.failed : undefined });
      return true;
    }
    if (c.k === 'grp') {
      const gid = typeof c.gid === 'string' ? c.gid : '';
      const members = Array.isArray(c.members) ? (c.members as unknown[]).filter((m): m is string => typeof m === 'string') : [];
      const epoch = typeof c.epoch === 'number' ? c.epoch : -1;
      const rawGroup = await kv.get(GROUP(gid));
      const current = rawGroup ? (JSON.parse(rawGroup) as GroupState) : undefined;
      const admin = current?.admin ?? (typeof c.admin === 'string' ? c.admin : '');
      // Single writer: only the admin changes a group, and only forward.
      if (!gid || msg.from !== admin || (current && epoch <= current.epoch)) return true;
      const name = typeof c.name === 'string' && c.name.length <= 100 ? c.name : current?.name;
      await kv.set(GROUP(gid), JSON.stringify({ gid, epoch, admin, members, ...(name ? { name } : {}) } satisfies GroupState));
      return false;
    }
    return false;
  }

  private async decryptGroup(env: DeliveredEnvelope, senderHex: string, kv: KeyValueStore): Promise<Uint8Array> {
    const msg = parseSenderKeyMessage(b64uDecode(env.content));
    const gid = b64uEncode(msg.gid);
    const key = IN_CHAIN(senderHex, env.senderDeviceId!, gid, msg.epoch, msg.chainId);
    const raw = await kv.get(key);
    if (!raw) throw new CryptoError('DECRYPT_FAILED', 'no sender key for this chain (no SKDM received)');
    const list = await this.cachedOrFetchedList(env.senderAccountId!, env.senderDeviceId!);
    const cert = list.devices.find((d) => d.deviceId === env.senderDeviceId);
    if (!cert) throw new CryptoError('DECRYPT_FAILED', 'sender device not in its current list');
    const r = senderKeyDecrypt(deserializeSenderChain(raw), addr(cert), msg);
    await kv.set(key, serializeSenderChain(r.chain));
    return r.content;
  }


  private startSession(cert: DeviceCertificate, bundleB64: string): RatchetState {
    const me = this.client.identity;
    const bundle = parsePreKeyBundle(b64uDecode(bundleB64));
    if (!bytesEqual(bundle.certificate.bytes, cert.bytes)) throw new CryptoError('MALFORMED', 'bundle certificate is not the one in the verified device list');
    verifyBundle(bundle, this.now());
    const self = parseDeviceCertificate(me.device.certificate);
    const init = pqxdhInitiate({ cert: self, dikSk: me.device.dikSk }, bundle);
    const prefix = encodePreKeyMessage(init.fields, new Uint8Array(0));
    return initInitiator({
      rk0: init.rk0, peerSpk: init.spk, self: addr(self), peer: addr(cert), baseKey: init.baseKey, pendingPrekey: prefix.slice(0, prefix.length - 4), now: this.now(),
      ...(init.headerEncryption ? { headerKeys: { hkA: init.hkA, hkB: init.hkB } } : {}),
    });
  }

  private async loadRecord(peerHex: string, device: number, kv: KeyValueStore = this.store): Promise<SessionRecord | undefined> {
    const raw = await kv.get(SESSION(peerHex, device));
    return raw ? (JSON.parse(raw) as SessionRecord) : undefined;
  }

  private async loadSession(cert: DeviceCertificate): Promise<RatchetState | undefined> {
    const rec = await this.loadRecord(hexEncode(accountIdOf(cert.aik)), cert.deviceId);
    return rec ? deserializeRatchetState(rec.active) : undefined;
  }

  /** `fresh`: a new session becomes active and the old one is archived (Sesame). */
  private async saveSession(cert: { aik: Uint8Array; deviceId: number }, state: RatchetState, fresh: boolean, archivedIndex?: number, kv: KeyValueStore = this.store): Promise<void> {
    const peerHex = hexEncode(accountIdOf(cert.aik));
    const rec = (await this.loadRecord(peerHex, cert.deviceId, kv)) ?? { active: '', archived: [] };
    const serial = serializeRatchetState(state);
    if (archivedIndex !== undefined) {
      // An archived session that decrypts becomes active again.
      rec.archived.splice(archivedIndex, 1);
      if (rec.active) rec.archived.unshift(rec.active);
      rec.active = serial;
    } else if (fresh && rec.active) {
      rec.archived.unshift(rec.active);
      rec.active = serial;
    } else {
      rec.active = serial;
    }
    rec.archived = rec.archived.slice(0, MAX_ARCHIVED);
    await kv.set(SESSION(peerHex, cert.deviceId), JSON.stringify(rec));
  }

  private async receive(env: DeliveredEnvelope): Promise<void> {
    if (env.type === NoticeType.ExpiryReceipt && env.senderAccountId === null) {
      const parsed = ExpiryReceiptSchema.safeParse(safeJson(b64uDecode(env.content)));
      if (parsed.success) for (const h of this.receiptHandlers) h(parsed.data);
      return;
    }
    let shown: ReceivedMessage | undefined;
    try {
      shown = await this.lock.run(() => this.process(env));
    } catch (err) {
      for (const h of this.errorHandlers) h(err, env);
      if (err instanceof CryptoError && (err.code === 'DECRYPT_FAILED' || err.code === 'MALFORMED') && (env.type === 1 || env.type === 2)) {
        await this.requestRetry(env).catch((e: unknown) => {
          for (const h of this.errorHandlers) h(e, env);
        });
      }
      // A message that can never be read is done with (acked); anything else, a storage or network
      // failure, is thrown so the client leaves the envelope queued for another delivery.
      if (err instanceof CryptoError || (err instanceof UmbraApiError && !err.retryable)) return;
      throw err;
    }
    if (!shown) return;
    for (const h of this.handlers) {
      try {
        await h(shown);
      } catch (err) {
        // The message is in the history already; an application handler's failure does not undo that.
        for (const e of this.errorHandlers) e(err, env);
      }
    }
  }

  /**
   * Decrypts one envelope and applies it as one unit: the new session state, consumed prekeys, the
   * replay-cache mark, the de-duplication mark and the history entry are committed in one store
   * batch, or nothing is. Returns the message to show, if any.
   */
  private async process(env: DeliveredEnvelope): Promise<ReceivedMessage | undefined> {
    const tx = new StoreTransaction(this.store);
    const msg = await this.decrypt(env, tx);
    if (!msg) return undefined;
    msg.envelopeId = env.id;
    msg.clientMessageId = env.clientMessageId;
    const key = `${msg.from}:${msg.content.id}`;
    if (this.seen.includes(key)) {
      // Already shown: keep only the session state this decryption advanced.
      await tx.commit();
      return undefined;
    }
    const seen = [...this.seen, key].slice(-10_000);
    await tx.set(SEEN, JSON.stringify(seen));
    const show = !(await this.applyControl(msg, tx)) && (await this.keep(msg, tx));
    await tx.commit();
    this.seen = seen;
    return show ? msg : undefined;
  }

  /**
   * Applies §8 to a user message: one whose deadline has passed is dropped unseen (a device that was
   * offline never shows it); the conversation adopts the message's timer; the rest goes to the history.
   */
  private async keep(msg: ReceivedMessage, kv: KeyValueStore): Promise<boolean> {
    const c = msg.content;
    if (!USER_KINDS.has(c.k)) return true;
    const now = this.now();
    const conv = typeof c.gid === 'string' ? c.gid : msg.sync ? (msg.dest ?? msg.from) : msg.from;
    const deleteAt = History.deadline(c, msg.serverTimestamp, now, msg.sync);
    msg.conv = conv;
    msg.deleteAt = deleteAt;
    if (deleteAt !== null && deleteAt <= now) return false;
    // decodeContent has checked `exp`; a message without one turns the conversation's timer off.
    await this.saveTimer(conv, c.exp ? { t: c.exp.t, m: c.exp.m } : null, kv);
    return this.history.add({
      conv, id: c.id, from: msg.from, fromDevice: msg.fromDevice, outgoing: msg.sync, content: c, serverTimestamp: msg.serverTimestamp,
      receivedAt: now, deleteAt, envelope: `${msg.from}:${msg.fromDevice}:${msg.clientMessageId ?? ''}`, ...(msg.envelopeId ? { envelopeId: msg.envelopeId } : {}),
    }, kv);
  }

  private readonly lastRetry = new Map<string, number>();

  /**
   * A message we cannot decrypt means our session with that device is broken: start a fresh one to
   * it and send Content{k:"retry"} (§5). The peer's next message then uses the new session. At most
   * one retry per device per minute, so two broken peers cannot loop.
   */
  private async requestRetry(env: DeliveredEnvelope): Promise<void> {
    if (!env.senderAccountId || env.senderDeviceId === null) return;
    const key = `${env.senderAccountId}:${env.senderDeviceId}`;
    const last = this.lastRetry.get(key) ?? 0;
    if (this.now() - last < 60_000) return;
    this.lastRetry.set(key, this.now());
    const content: Content = { v: 1, id: b64uEncode(randomBytes(16)), ts: this.now(), k: 'retry', device: env.senderDeviceId, failed: env.clientMessageId };
    await this.sendContent(env.senderAccountId, content, new Set([key]));
  }

  private async decrypt(env: DeliveredEnvelope, kv: KeyValueStore): Promise<ReceivedMessage | undefined> {
    if (!env.senderAccountId || env.senderDeviceId === null) throw new CryptoError('MALFORMED', 'sealed sender is not supported yet');
    const me = this.client.identity;
    const self = parseDeviceCertificate(me.device.certificate);
    const senderId = decodeAccountId(env.senderAccountId);
    const senderHex = hexEncode(senderId);
    const bytes = b64uDecode(env.content);
    let plaintext: Uint8Array;
    let senderCert: { aik: Uint8Array; deviceId: number };
    if (env.type === 1) {
      const pm = parsePreKeyMessage(bytes);
      if (!bytesEqual(accountIdOf(pm.cert.aik), senderId) || pm.cert.deviceId !== env.senderDeviceId) throw new CryptoError('MALFORMED', 'PreKeyMessage certificate does not match the envelope sender');
      senderCert = pm.cert;
      const rec = await this.loadRecord(senderHex, env.senderDeviceId, kv);
      const all = rec ? [rec.active, ...rec.archived].map(deserializeRatchetState) : [];
      const existing = all.findIndex((s) => bytesEqual(s.baseKey, pm.ek));
      if (existing >= 0) {
        const r = ratchetDecrypt(all[existing]!, pm.ratchetMessage, this.now());
        await this.saveSession(pm.cert, r.state, false, existing === 0 ? undefined : existing - 1, kv);
        plaintext = r.content;
      } else {
        const pk = this.client.prekeys;
        // §2/§3: without a one-time key the same initial message would set up the same session again.
        const reusableKeys = pm.opkId === undefined || pm.pqKind === PREKEY_KIND.PQLR;
        if (reusableKeys && (await pk.replayed(pm.spkId, pm.ek, kv))) throw new CryptoError('REPLAY', 'initial message already processed (PreKeyMessage replay cache)');
        const spkSk = await pk.secret(PREKEY_KIND.SPK, pm.spkId);
        const opkSk = pm.opkId === undefined ? undefined : await pk.secret(PREKEY_KIND.OPK, pm.opkId);
        const kemSeed = await pk.secret(pm.pqKind as 3 | 4, pm.pqKeyId);
        if (!spkSk || !kemSeed || (pm.opkId !== undefined && !opkSk)) throw new CryptoError('DECRYPT_FAILED', 'prekey unknown or already used');
        const secrets = pqxdhRespond({ cert: self, dikSk: me.device.dikSk }, pm, { spkSk, ...(opkSk ? { opkSk } : {}), kemSeedOrSk: kemSeed, kemPk: ml_kem1024.keygen(kemSeed).publicKey });
        const state = initResponder({
          rk0: secrets.rk0, spkSk, self: addr(self), peer: addr(pm.cert), baseKey: pm.ek, now: this.now(),
          ...(secrets.headerEncryption ? { headerKeys: { hkA: secrets.hkA, hkB: secrets.hkB } } : {}),
        });
        const r = ratchetDecrypt(state, pm.ratchetMessage, this.now());
        await this.saveSession(pm.cert, r.state, true, undefined, kv);
        if (pm.opkId !== undefined) await pk.consume(PREKEY_KIND.OPK, pm.opkId, kv);
        if (pm.pqKind === PREKEY_KIND.PQOPK) await pk.consume(PREKEY_KIND.PQOPK, pm.pqKeyId, kv);
        if (reusableKeys) await pk.recordInitial(pm.spkId, pm.ek, kv);
        plaintext = r.content;
      }
    } else if (env.type === 2) {
      const rec = await this.loadRecord(senderHex, env.senderDeviceId, kv);
      if (!rec) throw new CryptoError('DECRYPT_FAILED', 'no session with this device');
      const states = [rec.active, ...rec.archived].map(deserializeRatchetState);
      let done: { state: RatchetState; content: Uint8Array; index: number } | undefined;
      let lastErr: unknown;
      for (const [index, s] of states.entries()) {
        try {
          done = { ...ratchetDecrypt(s, bytes, this.now()), index };
          break;
        } catch (err) {
          lastErr = err;
        }
      }
      if (!done) throw lastErr;
      const list = await this.cachedOrFetchedList(env.senderAccountId, env.senderDeviceId);
      const cert = list.devices.find((d) => d.deviceId === env.senderDeviceId);
      senderCert = cert ?? { aik: list.aik, deviceId: env.senderDeviceId };
      await this.saveSession(senderCert, done.state, false, done.index === 0 ? undefined : done.index - 1, kv);
      plaintext = done.content;
    } else if (env.type === 3) {
      plaintext = await this.decryptGroup(env, senderHex, kv);
      const list = await this.cachedOrFetchedList(env.senderAccountId, env.senderDeviceId);
      senderCert = list.devices.find((d) => d.deviceId === env.senderDeviceId) ?? { aik: list.aik, deviceId: env.senderDeviceId };
    } else {
      throw new CryptoError('MALFORMED', `envelope type ${env.type} is not supported yet`);
    }
    const content = decodeContent(plaintext);
    const list = await this.cachedOrFetchedList(env.senderAccountId, env.senderDeviceId);
    const verified = list.devices.some((d) => d.deviceId === env.senderDeviceId && bytesEqual(d.aik, senderCert.aik));
    if (content.k === 'sync') {
      if (!bytesEqual(senderId, me.accountId)) throw new CryptoError('MALFORMED', 'sync content from another account');
      return {
        from: env.senderAccountId, fromDevice: env.senderDeviceId, content: decodeContent(encodeContent(content.inner as Content)), sync: true, verified, serverTimestamp: env.serverTimestamp,
        ...(typeof content.dest === 'string' ? { dest: content.dest } : {}),
      };
    }
    return { from: env.senderAccountId, fromDevice: env.senderDeviceId, content, sync: false, verified, serverTimestamp: env.serverTimestamp };
  }

  /** The cached verified list, refetched when it does not know `deviceId` (a newly linked device). */
  private async cachedOrFetchedList(accountIdText: string, deviceId?: number): Promise<SignedDeviceList> {
    const raw = await this.store.get(LIST(hexEncode(decodeAccountId(accountIdText))));
    const cached = raw ? parseSignedDeviceList(b64uDecode(raw)) : undefined;
    if (cached && (deviceId === undefined || cached.devices.some((d) => d.deviceId === deviceId))) return cached;
    return this.deviceList(accountIdText);
  }
}

function safeJson(bytes: Uint8Array): unknown {
  try {
    return JSON.parse(new TextDecoder().decode(bytes)) as unknown;
  } catch {
    return undefined;
  }
}
