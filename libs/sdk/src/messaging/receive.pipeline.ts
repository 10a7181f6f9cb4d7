import { CryptoError, b64uDecode } from '@umbra/crypto';
import { ExpiryReceiptSchema, NoticeType, type DeliveredEnvelope } from '@umbra/protocol';
import { UmbraApiError } from '../errors';
import { History } from '../history';
import { StoreTransaction, type KeyValueStore } from '../store';
import type { AnnotationsService } from './annotations.service';
import type { EnvelopeDecryptor } from './envelope.decryptor';
import type { GroupsService } from './groups.service';
import type { MessagingContext } from './messaging.context';
import { LocalState } from '../state/local.state';
import { STATE_KEYS } from '../state/state.keys';
import { ANNOTATION_KINDS, USER_KINDS, conversationOf, type ReceivedMessage } from './messaging.types';
import type { RetryRequester } from './retry.requester';
import type { TimersService } from './timers.service';

/** How many shown messages the de-duplication marks remember. */
const MAX_SEEN = 10_000;

/**
 * Every envelope the client delivers: decrypted, de-duplicated, control contents applied, user
 * messages kept in the history under their timer, and what is to be shown handed to the `message`
 * handlers. An undecryptable message asks its sender for a retry.
 */
export class ReceivePipeline {
  private seen: string[] = [];

  constructor(
    private readonly ctx: MessagingContext,
    private readonly decryptor: EnvelopeDecryptor,
    private readonly groups: GroupsService,
    private readonly timers: TimersService,
    private readonly annotations: AnnotationsService,
    private readonly retries: RetryRequester,
  ) {}

  /** Loads the de-duplication marks. */
  async open(): Promise<void> {
    this.seen = (await new LocalState(this.ctx.store).get(STATE_KEYS.seenContent)) ?? [];
  }

  async receive(env: DeliveredEnvelope): Promise<void> {
    const events = this.ctx.events;
    if (env.type === NoticeType.ExpiryReceipt && env.senderAccountId === null) {
      const parsed = ExpiryReceiptSchema.safeParse(safeJson(b64uDecode(env.content)));
      if (parsed.success) events.emit('expiryReceipt', parsed.data);
      return;
    }
    let shown: ReceivedMessage | undefined;
    try {
      shown = await this.ctx.lock.run(() => this.process(env));
    } catch (err) {
      events.emit('error', err, env);
      if (err instanceof CryptoError && (err.code === 'DECRYPT_FAILED' || err.code === 'MALFORMED') && (env.type === 1 || env.type === 2)) {
        await this.retries.request(env).catch((e: unknown) => events.emit('error', e, env));
      }
      // A message that can never be read is done with (acked); anything else, a storage or network
      // failure, is thrown so the client leaves the envelope queued for another delivery.
      if (err instanceof CryptoError || (err instanceof UmbraApiError && !err.retryable)) return;
      throw err;
    }
    if (shown) await events.deliver(shown, env);
  }

  /**
   * Decrypts one envelope and applies it as one unit: the new session state, consumed prekeys, the
   * replay-cache mark, the de-duplication mark and the history entry are committed in one store
   * batch, or nothing is. Returns the message to show, if any.
   */
  private async process(env: DeliveredEnvelope): Promise<ReceivedMessage | undefined> {
    const tx = new StoreTransaction(this.ctx.store);
    const msg = await this.decryptor.decrypt(env, tx);
    msg.envelopeId = env.id;
    msg.clientMessageId = env.clientMessageId;
    const key = `${msg.from}:${msg.content.id}`;
    if (this.seen.includes(key)) {
      // Already shown: keep only the session state this decryption advanced.
      await tx.commit();
      return undefined;
    }
    const seen = [...this.seen, key].slice(-MAX_SEEN);
    await new LocalState(tx).set(STATE_KEYS.seenContent, seen);
    const show = !(await this.applyControl(msg, tx)) && (await this.keep(msg, tx));
    await tx.commit();
    this.seen = seen;
    return show ? msg : undefined;
  }

  /** Control contents (SKDM, group state, timers, retries) are applied here; returns true for those not shown as messages. */
  private async applyControl(msg: ReceivedMessage, kv: KeyValueStore): Promise<boolean> {
    const c = msg.content;
    if (c.k === 'skdm') {
      await this.groups.applySkdm(msg, kv);
      return true;
    }
    if (c.k === 'exp_set') {
      if (typeof c.gid === 'string' && !(await this.groups.get(c.gid))?.members.includes(msg.from)) return true;
      const conv = conversationOf(msg);
      if (conv) await this.timers.applyAnnouncement(conv, c, kv);
      return true;
    }
    if (ANNOTATION_KINDS.has(c.k)) {
      // The app hears these (to update its view) after the history has them.
      const conv = conversationOf(msg);
      msg.conv = conv;
      if (conv) await this.annotations.apply({ from: msg.from, content: c, conv }, kv);
      return false;
    }
    if (c.k === 'retry') {
      this.ctx.events.emit('retry', { from: msg.from, device: msg.fromDevice, failedClientMessageId: typeof c.failed === 'string' ? c.failed : undefined });
      return true;
    }
    if (c.k === 'grp') return !(await this.groups.applyState(msg, kv));
    return false;
  }

  /**
   * Applies §8 to a user message: one whose deadline has passed is dropped unseen (a device that was
   * offline never shows it); the conversation adopts the message's timer; the rest goes to the history.
   */
  private async keep(msg: ReceivedMessage, kv: KeyValueStore): Promise<boolean> {
    const c = msg.content;
    if (!USER_KINDS.has(c.k)) return true;
    const now = this.ctx.now();
    const conv = conversationOf(msg) ?? msg.from;
    const deleteAt = History.deadline(c, msg.serverTimestamp, now, msg.sync);
    msg.conv = conv;
    msg.deleteAt = deleteAt;
    if (deleteAt !== null && deleteAt <= now) return false;
    // decodeContent has checked `exp`; a message without one turns the conversation's timer off.
    await this.timers.save(conv, c.exp ? { t: c.exp.t, m: c.exp.m } : null, kv);
    return this.ctx.history.add({
      conv, id: c.id, from: msg.from, fromDevice: msg.fromDevice, outgoing: msg.sync, content: c, serverTimestamp: msg.serverTimestamp,
      receivedAt: now, deleteAt, envelope: `${msg.from}:${msg.fromDevice}:${msg.clientMessageId ?? ''}`, ...(msg.envelopeId ? { envelopeId: msg.envelopeId } : {}),
    }, kv);
  }
}

function safeJson(bytes: Uint8Array): unknown {
  try {
    return JSON.parse(new TextDecoder().decode(bytes)) as unknown;
  } catch {
    return undefined;
  }
}
