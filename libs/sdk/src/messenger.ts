import { safetyNumber, type Content, type SignedDeviceList } from '@umbra/crypto';
import type { DeliveredEnvelope, ExpiredMessageRef, ExpiryReceipt, RecallResult, SendResult } from '@umbra/protocol';
import type { UmbraClient } from './client';
import { History, type HistoryEntry, type Timer } from './history';
import { AnnotationsService } from './messaging/annotations.service';
import { DeviceListsCache } from './messaging/device-lists.cache';
import { EnvelopeDecryptor } from './messaging/envelope.decryptor';
import { GroupsService } from './messaging/groups.service';
import { newId, type MessagingContext } from './messaging/messaging.context';
import type { GroupState, ReceivedMessage, RetryRequest } from './messaging/messaging.types';
import { MessengerEvents } from './messaging/messenger.events';
import { PairwiseSender } from './messaging/pairwise.sender';
import { ReceivePipeline } from './messaging/receive.pipeline';
import { RetryRequester } from './messaging/retry.requester';
import { SessionsStore } from './messaging/sessions.store';
import { TimersService } from './messaging/timers.service';
import { Mutex } from './mutex';
import type { KeyValueStore } from './store';

export type { GroupState, ReceivedMessage, RetryRequest } from './messaging/messaging.types';

/**
 * End-to-end encryption over UmbraClient (PROTOCOL.md §3–§8): one ratchet session per peer device,
 * created from a prekey bundle on first contact; every message encrypted once per recipient device
 * and per own other device; 409 device mismatches resolved by refetching and verifying the device
 * lists; groups under sender keys; vanishing timers; the history. The server only ever sees the
 * ciphertext. The work is done by the parts in ./messaging; this class composes them.
 */
export class Messenger {
  private readonly events: MessengerEvents;
  private readonly lists: DeviceListsCache;
  private readonly timers: TimersService;
  private readonly pairwise: PairwiseSender;
  private readonly groups: GroupsService;
  private readonly annotations: AnnotationsService;
  private readonly pipeline: ReceivePipeline;

  private constructor(
    readonly client: UmbraClient,
    store: KeyValueStore,
    private readonly now: () => number,
    /** This device's message history, with vanishing timers enforced (§8). */
    readonly history: History,
  ) {
    this.events = new MessengerEvents();
    const ctx: MessagingContext = { client, store, now, history, events: this.events, lock: new Mutex() };
    const sessions = new SessionsStore(client, store, now);
    this.lists = new DeviceListsCache(client, store);
    this.timers = new TimersService(ctx);
    this.pairwise = new PairwiseSender(ctx, this.lists, sessions, this.timers);
    this.groups = new GroupsService(ctx, this.lists, this.pairwise, this.timers);
    this.annotations = new AnnotationsService(ctx, this.pairwise, this.groups);
    const decryptor = new EnvelopeDecryptor(ctx, sessions, this.lists, this.groups);
    this.pipeline = new ReceivePipeline(ctx, decryptor, this.groups, this.timers, this.annotations, new RetryRequester(ctx, this.pairwise));
  }

  static async open(client: UmbraClient, store: KeyValueStore, now: () => number = () => Date.now()): Promise<Messenger> {
    const m = new Messenger(client, store, now, await History.open(store, now));
    await m.pipeline.open();
    client.on('message', (env) => m.pipeline.receive(env));
    const forget = (refs: ExpiredMessageRef[]) =>
      m.history.deleteByEnvelopes(refs.map((r) => `${r.senderAccountId}:${r.senderDeviceId}:${r.clientMessageId}`));
    client.on('expired', async (ev) => {
      await forget(ev.messages);
    });
    client.on('recalled', async (ev) => {
      await forget(ev.messages);
    });
    return m;
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
    this.events.on(event, handler as never);
  }

  // Timers (§8)

  /** The vanishing timer of a conversation (peer account or group id), or null. */
  timer(conv: string): Promise<Timer | null> {
    return this.timers.get(conv);
  }

  /**
   * Sets the conversation timer (§8) and tells the peer with an E2EE Content{k:"exp_set"}; every
   * later message carries it inside the ciphertext and in the envelope for the servers.
   */
  async setTimer(peer: string, timer: Timer | null): Promise<SendResult> {
    await this.timers.save(peer, timer);
    return this.pairwise.send(peer, this.timers.announcement(timer));
  }

  /** Sets a group's timer and tells every member (pairwise E2EE `exp_set` with the group id); any member may. */
  async setGroupTimer(gid: string, timer: Timer | null): Promise<void> {
    const state = await this.groups.get(gid);
    if (!state) throw new Error('unknown group');
    await this.timers.save(gid, timer);
    const me = this.client.identity.accountIdText;
    const content = this.timers.announcement(timer, gid);
    for (const member of state.members) if (member !== me) await this.pairwise.send(member, content);
  }

  /** Marks a received message as displayed: a read-mode timer starts, here and for the copy the server may still hold. */
  async markRead(conv: string, id: string): Promise<HistoryEntry | undefined> {
    const e = await this.history.markRead(conv, id);
    if (e?.envelopeId && e.content.exp?.m === 'read') await this.client.markRead([e.envelopeId]).catch(() => undefined);
    return e;
  }

  // Devices

  /**
   * Fetches, verifies and caches an account's device list (rollback and equivocation checked). The
   * list must be in the key-transparency log (§12): a KtVerificationError stops the caller — a send
   * to that account encrypts nothing.
   */
  deviceList(accountIdText: string): Promise<SignedDeviceList> {
    return this.lists.fetch(accountIdText);
  }

  safetyNumber(peerAik: Uint8Array): ReturnType<typeof safetyNumber> {
    return safetyNumber(this.client.identity.aik, peerAik);
  }

  // Pairwise sends

  /** Sends a text under the conversation's timer (unless `extra.exp` says otherwise) and keeps it in the history. */
  sendText(peer: string, text: string, extra: Partial<Content> = {}): Promise<SendResult> {
    return this.pairwise.sendUser(peer, { v: 1, id: newId(), ts: this.now(), k: 'text', text, ...extra });
  }

  /** Sends a user-visible Content (text, att, …) under the conversation's timer and records it in the history. */
  sendUserContent(peer: string, content: Content): Promise<SendResult> {
    return this.pairwise.sendUser(peer, content);
  }

  /**
   * Sends one Content to every device of `peer` and a sync copy to our other devices. `envelope.expiresAt`
   * bounds how long the servers keep it for a device that is away, without making it a vanishing message
   * (call signalling: an offer must not ring a device that comes online an hour later). `envelope.urgent`
   * asks the servers to wake the peer's devices that are not connected (a call offer).
   */
  sendContent(peer: string, content: Content, freshSessions: Set<string> = new Set(), envelope: { expiresAt?: number; urgent?: boolean } = {}): Promise<SendResult> {
    return this.pairwise.send(peer, content, freshSessions, envelope);
  }

  // Replies, reactions, edits, delete for everyone

  /**
   * Delete for everyone: our own message `id` in conversation `conv` (peer account or group id). When
   * this device sent it, its still-queued copies are recalled first (a device that was offline never
   * receives the ciphertext); then an E2EE Content{k:"del", target} tells every device that already has
   * it (the peer's or members', and our others) to delete it. Returns how many copies were recalled.
   */
  deleteForEveryone(conv: string, id: string): Promise<{ recalled: number }> {
    return this.annotations.deleteForEveryone(conv, id);
  }

  /**
   * Recalls the still-queued copies of this device's send `clientMessageId` in conversation `conv`:
   * the request names the accounts it went to (the group's current members, or the peer, and ours),
   * so the server deletes within their queues only.
   */
  recall(conv: string, clientMessageId: string): Promise<RecallResult> {
    return this.annotations.recall(conv, clientMessageId);
  }

  /**
   * Replies to message `id` of the conversation: a text whose Content carries `reply: {id, from, text}`
   * (the quoted message's id, author and up to 200 characters of its text, so every device can show
   * the quote even without the original).
   */
  reply(conv: string, id: string, text: string): Promise<SendResult> {
    return this.annotations.reply(conv, id, text);
  }

  /** Reacts to message `id` with an emoji (one reaction per account; `null` removes ours). */
  react(conv: string, id: string, emoji: string | null): Promise<void> {
    return this.annotations.react(conv, id, emoji);
  }

  /** Replaces the text of our own message `id`; every device keeps the latest edit (by its ts, then id). */
  edit(conv: string, id: string, text: string): Promise<void> {
    return this.annotations.edit(conv, id, text);
  }

  /** The message of ours (this device's send) with this clientMessageId, if the history still has it. */
  findOwnSend(clientMessageId: string): Promise<HistoryEntry | undefined> {
    const me = this.client.identity;
    return this.history.findByEnvelope(`${me.accountIdText}:${me.device.deviceId}:${clientMessageId}`);
  }

  // Groups (§6)

  group(gid: string): Promise<GroupState | undefined> {
    return this.groups.get(gid);
  }

  /** Creates a group with us as admin; members learn it (and its name) from an E2EE "grp" message. Returns the group id. */
  createGroup(members: string[], name?: string): Promise<string> {
    return this.groups.create(members, name);
  }

  addMember(gid: string, member: string): Promise<GroupState> {
    return this.groups.addMember(gid, member);
  }

  /** Removes a member: a new epoch, so the next send rekeys and the removed member gets no new chain. */
  removeMember(gid: string, member: string): Promise<GroupState> {
    return this.groups.removeMember(gid, member);
  }

  /**
   * Sends to a group with our sender-key chain: the chain is created or replaced when the epoch
   * changed, a member device was dropped, or it is 7 days or 1000 messages old (§6 rekey rules),
   * handed to every member device that lacks it as a pairwise SKDM, then one SenderKeyMessage
   * goes to all member devices and our other devices.
   */
  sendGroupText(gid: string, text: string, extra: Partial<Content> = {}): Promise<SendResult> {
    return this.groups.send(gid, { v: 1, id: newId(), ts: this.now(), k: 'text', text, ...extra });
  }

  /** Sends a user-visible Content to the group under its timer and records it in the history (sendGroupText's path). */
  sendGroupContent(gid: string, input: Content): Promise<SendResult> {
    return this.groups.send(gid, input);
  }
}
