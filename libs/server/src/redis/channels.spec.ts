import type { Bus } from './bus';
import { Channels, type DevicesChangedMessage, type GatewayMessage } from './channels';

describe('Channels', () => {
  it('names channels under the prefix', () => {
    expect(Channels.deliver('umbra', 'gw-1')).toBe('umbra:deliver:gw-1');
    expect(Channels.devicesChanged('umbra')).toBe('umbra:devices-changed');
    expect(Channels.keysLow('umbra')).toBe('umbra:keys-low');
  });

  it('binds each channel to its payload type (checked by tsc on the specs)', () => {
    const typeChecks = (bus: Bus) => {
      const stored: GatewayMessage = { kind: 'stored', results: [] };
      void bus.publish(Channels.deliver('p', 'gw'), stored);
      // @ts-expect-error a gateway message is not a devices-changed message
      void bus.publish(Channels.devicesChanged('p'), stored);
      // @ts-expect-error a plain string is not a channel
      void bus.publish('p:deliver:gw', stored);
      void bus.subscribe(Channels.devicesChanged('p'), (m: DevicesChangedMessage) => m.account);
      // @ts-expect-error the handler of a deliver channel takes a GatewayMessage
      void bus.subscribe(Channels.deliver('p', 'gw'), (m: DevicesChangedMessage) => m.account);
      void bus.publishMany([{ channel: Channels.deliver('p', 'gw'), message: stored }]);
      const changed: DevicesChangedMessage = { account: 'aa', listVersion: 1, removed: [], added: [] };
      // @ts-expect-error every publication's message must be its channel's payload
      void bus.publishMany([{ channel: Channels.deliver('p', 'gw'), message: changed }]);
    };
    expect(typeof typeChecks).toBe('function');
  });
});
