import { decodeCandidate, encodeCandidate, type CallPeerConnection } from './peer-connection';

// The browser's native RTCPeerConnection (lib.dom) fits the interface the calls module uses; werift's
// is checked the same way by test/calls.e2e.test.ts. A change that breaks either fails to compile.
export const browserFits = (pc: RTCPeerConnection): CallPeerConnection => pc;

describe('ICE candidates in call signals', () => {
  it('round-trip with sdpMid and sdpMLineIndex, and drop nulls', () => {
    const c = { candidate: 'candidate:1 1 udp 2130706431 127.0.0.1 50000 typ relay', sdpMid: '0', sdpMLineIndex: 0 };
    expect(decodeCandidate(encodeCandidate(c))).toEqual(c);
    expect(decodeCandidate(encodeCandidate({ candidate: c.candidate, sdpMid: null, sdpMLineIndex: null }))).toEqual({ candidate: c.candidate });
  });

  it('refuse what is not a candidate', () => {
    for (const bad of ['', 'not json', '{}', '{"candidate":5}', 'null', '[]']) expect(decodeCandidate(bad)).toBeUndefined();
  });
});
