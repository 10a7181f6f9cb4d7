import {
  CryptoError,
  addr,
  b64uDecode,
  b64uEncode,
  chainFromSkdm,
  decodeAccountId,
  deserializeSenderChain,
  encodeContent,
  envelopeExpiry,
  hexEncode,
  newSenderChain,
  parseDeviceCertificate,
  parseSenderKeyMessage,
  randomBytes,
  senderKeyDecrypt,
  senderKeyEncrypt,
  serializeSenderChain,
  skdmOf,
  type Content,
  type SenderChain,
  type SignedDeviceList,
} from '@umbra/crypto';
import type { DeliveredEnvelope, SendResult } from '@umbra/protocol';
import { UmbraApiError } from '../errors';
import type { KeyValueStore } from '../store';
import type { DeviceListsCache } from './device-lists.cache';
import { newId, recordOutgoing, type MessagingContext } from './messaging.context';
import { LocalState } from '../state/local.state';
import { STATE_KEYS } from '../state/state.keys';
import { USER_KINDS, type GroupState, type ReceivedMessage } from './messaging.types';
import { DEVICE_MISMATCH_RETRIES, type PairwiseSender } from './pairwise.sender';
import type { TimersService } from './timers.service';

const REKEY_AFTER_MS = 7 * 86_400_000;
const REKEY_AFTER_MESSAGES = 1000;
const MAX_GROUP_NAME = 100;

/**
 * Groups (§6): state under the single-writer admin model, told to members pairwise (Content{k:"grp"}),
 * and messages under sender keys, handed out as pairwise SKDMs and replaced on the rekey rules.
 */
export class GroupsService {
  constructor(
    private readonly ctx: MessagingContext,
    private readonly lists: DeviceListsCache,
    private readonly pairwise: PairwiseSender,
    private readonly timers: TimersService,
  ) {}

  get(gid: string, kv: KeyValueStore = this.ctx.store): Promise<GroupState | undefined> {
    return new LocalState(kv).get(STATE_KEYS.group(gid));
  }

  /** Creates a group with us as admin; members learn it (and its name) from an E2EE "grp" message. Returns the group id. */
  async create(members: string[], name?: string): Promise<string> {
    const me = this.ctx.client.identity.accountIdText;
    const state: GroupState = { gid: b64uEncode(randomBytes(32)), epoch: 0, admin: me, members: [me, ...new Set(members.filter((m) => m !== me))], ...(name ? { name } : {}) };
    await this.publish(state, state.members);
    return state.gid;
  }

  async addMember(gid: string, member: string): Promise<GroupState> {
    const state = await this.owned(gid);
    if (state.members.includes(member)) return state;
    const next = { ...state, epoch: state.epoch + 1, members: [...state.members, member] };
    await this.publish(next, next.members);
    return next;
  }

  /** Removes a member: a new epoch, so the next send rekeys and the removed member gets no new chain. */
  async removeMember(gid: string, member: string): Promise<GroupState> {
    const state = await this.owned(gid);
    const next = { ...state, epoch: state.epoch + 1, members: state.members.filter((m) => m !== member) };
    await this.publish(next, [...next.members, member]);
    return next;
  }

  /**
   * Sends a user-visible Content to the group under its timer and records it in the history: our
   * sender-key chain is created or replaced when the epoch changed, a member device was dropped, or
   * it is 7 days or 1000 messages old (§6 rekey rules), handed to every member device that lacks it
   * as a pairwise SKDM, then one SenderKeyMessage goes to all member devices and our other devices.
   */
  async send(gid: string, input: Content): Promise<SendResult> {
    const state = await this.get(gid);
    if (!state) throw new Error('unknown group');
    const me = this.ctx.client.identity;
    const self = parseDeviceCertificate(me.device.certificate);
    const timer = await this.timers.get(gid);
    const groupContent: Content = { ...input, gid, ...(timer ? { exp: timer } : {}) };
    const content = encodeContent(groupContent);
    const expiry = timer ? envelopeExpiry(groupContent) : {};
    const clientMessageId = newId();
    for (let attempt = 0; ; attempt++) {
      const lists = new Map<string, SignedDeviceList>();
      for (const m of new Set([...state.members, me.accountIdText])) lists.set(m, await this.lists.fetch(m));
      const targets: { account: string; deviceId: number }[] = [];
      for (const [account, list] of lists) {
        for (const d of list.devices) if (!(account === me.accountIdText && d.deviceId === me.device.deviceId)) targets.push({ account, deviceId: d.deviceId });
      }
      const chain = await this.distributedChain(state, targets);
      const enc = senderKeyEncrypt(chain, addr(self), content);
      await new LocalState(this.ctx.store).set(STATE_KEYS.ownChain(gid), { chain: serializeSenderChain(enc.chain), distributed: targets.map((t) => `${t.account}:${t.deviceId}`) });
      const body = b64uEncode(enc.message);
      try {
        const result = await this.ctx.client.send({ clientMessageId, recipients: targets.map((t) => ({ accountId: t.account, deviceId: t.deviceId, type: 3 as const, content: body })), ...expiry });
        if (USER_KINDS.has(groupContent.k)) await recordOutgoing(this.ctx, gid, groupContent, result);
        return result;
      } catch (err) {
        if (err instanceof UmbraApiError && err.code === 'DEVICE_MISMATCH' && attempt < DEVICE_MISMATCH_RETRIES) continue;
        throw err;
      }
    }
  }

  /** Decrypts a SenderKeyMessage (envelope type 3) with the chain the sender's SKDM gave us. */
  async decrypt(env: DeliveredEnvelope, senderHex: string, kv: KeyValueStore): Promise<Uint8Array> {
    const msg = parseSenderKeyMessage(b64uDecode(env.content));
    const gid = b64uEncode(msg.gid);
    const key = STATE_KEYS.inChain(senderHex, env.senderDeviceId!, gid, msg.epoch, msg.chainId);
    const raw = await new LocalState(kv).get(key);
    if (!raw) throw new CryptoError('DECRYPT_FAILED', 'no sender key for this chain (no SKDM received)');
    const list = await this.lists.cachedOrFetched(env.senderAccountId!, env.senderDeviceId!);
    const cert = list.devices.find((d) => d.deviceId === env.senderDeviceId);
    if (!cert) throw new CryptoError('DECRYPT_FAILED', 'sender device not in its current list');
    const r = senderKeyDecrypt(deserializeSenderChain(raw), addr(cert), msg);
    await new LocalState(kv).set(key, serializeSenderChain(r.chain));
    return r.content;
  }

  /** Keeps a member device's sender-key chain from its SKDM. */
  async applySkdm(msg: ReceivedMessage, kv: KeyValueStore): Promise<void> {
    const chain = chainFromSkdm(msg.content as never, this.ctx.now());
    const gid = b64uEncode(chain.gid);
    await new LocalState(kv).set(STATE_KEYS.inChain(hexEncode(decodeAccountId(msg.from)), msg.fromDevice, gid, chain.epoch, chain.chainId), serializeSenderChain(chain));
  }

  /** Applies a Content{k:"grp"}: only the admin changes a group, and only forward. Returns whether it did. */
  async applyState(msg: ReceivedMessage, kv: KeyValueStore): Promise<boolean> {
    const c = msg.content;
    const gid = typeof c.gid === 'string' ? c.gid : '';
    const members = Array.isArray(c.members) ? (c.members as unknown[]).filter((m): m is string => typeof m === 'string') : [];
    const epoch = typeof c.epoch === 'number' ? c.epoch : -1;
    const current = gid ? await this.get(gid, kv) : undefined;
    const admin = current?.admin ?? (typeof c.admin === 'string' ? c.admin : '');
    if (!gid || msg.from !== admin || (current && epoch <= current.epoch)) return false;
    const name = typeof c.name === 'string' && c.name.length <= MAX_GROUP_NAME ? c.name : current?.name;
    await new LocalState(kv).set(STATE_KEYS.group(gid), { gid, epoch, admin, members, ...(name ? { name } : {}) });
    return true;
  }

  /** Our chain for the group's current epoch, replaced on the rekey rules and handed (SKDM) to every target device lacking it. */
  private async distributedChain(state: GroupState, targets: { account: string; deviceId: number }[]): Promise<SenderChain> {
    const current = new Set(targets.map((t) => `${t.account}:${t.deviceId}`));
    const stored = await new LocalState(this.ctx.store).get(STATE_KEYS.ownChain(state.gid));
    let chain: SenderChain | undefined = stored ? deserializeSenderChain(stored.chain) : undefined;
    let distributed = stored?.distributed ?? [];
    const dropped = distributed.some((d) => !current.has(d));
    const now = this.ctx.now();
    if (!chain || chain.epoch !== state.epoch || dropped || now - chain.created > REKEY_AFTER_MS || chain.sent >= REKEY_AFTER_MESSAGES) {
      chain = newSenderChain(b64uDecode(state.gid), state.epoch, now);
      distributed = [];
    }
    const missing = new Set(targets.filter((t) => !distributed.includes(`${t.account}:${t.deviceId}`)).map((t) => t.account));
    const skdm: Content = { v: 1, id: newId(), ts: now, k: 'skdm', ...skdmOf(chain) };
    for (const account of missing) await this.pairwise.send(account, skdm);
    return chain;
  }

  private async owned(gid: string): Promise<GroupState> {
    const state = await this.get(gid);
    if (!state) throw new Error('unknown group');
    if (state.admin !== this.ctx.client.identity.accountIdText) throw new Error('only the group admin changes membership');
    return state;
  }

  private async publish(state: GroupState, tell: string[]): Promise<void> {
    await new LocalState(this.ctx.store).set(STATE_KEYS.group(state.gid), state);
    const me = this.ctx.client.identity.accountIdText;
    const content: Content = { v: 1, id: newId(), ts: this.ctx.now(), k: 'grp', gid: state.gid, epoch: state.epoch, admin: state.admin, members: state.members, ...(state.name ? { name: state.name } : {}) };
    for (const member of tell) if (member !== me) await this.pairwise.send(member, content);
  }
}
