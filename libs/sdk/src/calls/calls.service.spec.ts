import { b64uEncode, pub, generateSecretKey, sha256, type Content } from '@umbra/crypto';
import { MemoryStore } from '../store';
import { Calls } from './calls.service';
import type { CallsMessage, CallsMessenger } from './call-signals.channel';
import type { CallPeerConnection, CallSessionDescription } from './peer-connection';

const PEER = 'um1peer';

/** Only what Calls hands the transport: the content and the envelope options of each send. */
interface Sent {
  to: string;
  content: Content & { op?: string; sdp?: string; call_id?: string; party_id?: string };
  envelope: { expiresAt?: number; urgent?: boolean } | undefined;
}

class FakePeerConnection implements CallPeerConnection {
  connectionState = 'new';
  localDescription: { sdp: string } | null = null;
  onicecandidate: CallPeerConnection['onicecandidate'] = null;
  onconnectionstatechange: CallPeerConnection['onconnectionstatechange'] = null;
  private offers = 0;

  async createOffer(options?: { iceRestart?: boolean }) {
    return { sdp: `v=0 offer ${++this.offers}${options?.iceRestart ? ' ice-restart' : ''}` };
  }
  async createAnswer() {
    return { sdp: 'v=0 answer' };
  }
  async setLocalDescription(d: CallSessionDescription) {
    this.localDescription = { sdp: d.sdp };
  }
  async setRemoteDescription() {}
  async addIceCandidate() {}
  close() {}

  becomes(state: string): void {
    this.connectionState = state;
    this.onconnectionstatechange?.(undefined);
  }
}

function fakeMessenger() {
  const sent: Sent[] = [];
  let deliver: ((m: CallsMessage) => void) | undefined;
  const messenger: CallsMessenger = {
    client: {
      identity: { accountIdText: 'um1me', device: { deviceId: 1, certificate: new Uint8Array() } },
      api: async <T>() => ({ urls: ['turn:127.0.0.1:3478'], username: 'u', password: 'p' }) as T,
    },
    async sendContent(to, content, _fresh, envelope) {
      sent.push({ to, content: content as Sent['content'], envelope });
      return { clientMessageId: `m${sent.length}` };
    },
    deviceList: () => Promise.reject(new Error('not needed here')),
    on: (_event, handler) => void (deliver = handler),
  };
  return { messenger, sent, receive: (m: CallsMessage) => deliver!(m) };
}

describe('Calls: which signals are sent urgent', () => {
  it('only the first offer of a call wakes devices; the ICE-restart offer after a blip does not', async () => {
    const { messenger, sent, receive } = fakeMessenger();
    const pc = new FakePeerConnection();
    const calls = new Calls({ messenger, store: new MemoryStore(), createPeerConnection: () => pc, tickMs: 60_000 });
    try {
      const callId = await calls.call(PEER, 'audio');
      const offer = sent.find((s) => s.content.op === 'offer')!;
      receive({
        from: PEER,
        fromDevice: 2,
        sync: false,
        verified: true,
        content: {
          v: 1, id: 'answer-1', ts: Date.now(), k: 'call', op: 'answer', call_id: callId, party_id: 'calleeparty1', sdp: 'v=0 answer',
          E_r: b64uEncode(pub(generateSecretKey())), offer_hash: b64uEncode(sha256(new TextEncoder().encode(offer.content.sdp!))),
        } as Content,
      });
      await calls.idle();
      pc.becomes('connected');
      await calls.idle();
      expect(calls.active()).toMatchObject([{ callId, state: 'connected' }]);

      pc.becomes('disconnected');
      await calls.idle();
      const offers = sent.filter((s) => s.content.op === 'offer');
      expect(offers.map((s) => s.content.sdp)).toEqual(['v=0 offer 1', 'v=0 offer 2 ice-restart']);
      expect(offers.map((s) => s.to)).toEqual([PEER, PEER]);
      expect(offers[0]!.envelope).toMatchObject({ urgent: true });
      expect(offers[1]!.envelope?.urgent).toBeUndefined();
      // Short-lived like every call signal, and nothing else was urgent either.
      expect(offers[1]!.envelope?.expiresAt).toEqual(expect.any(Number));
      expect(sent.filter((s) => s.envelope?.urgent).map((s) => s.content.op)).toEqual(['offer']);
    } finally {
      await calls.close();
    }
  });
});
