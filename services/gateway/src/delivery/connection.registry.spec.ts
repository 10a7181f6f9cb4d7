import { Metrics } from '@umbra/server';
import { ConnectionRegistry, type Connection } from './connection.registry';

const gauge = async (metrics: Metrics) => (await metrics.connectedDevices.get()).values[0]?.value;

function conn(deviceKey: string): Connection {
  return { claim: { deviceKey, connectionId: deviceKey }, socket: { connected: true } } as unknown as Connection;
}

describe('ConnectionRegistry', () => {
  it('keeps umbra_connected_devices equal to the sockets it holds, also after clear()', async () => {
    const metrics = new Metrics('gateway', false);
    const registry = new ConnectionRegistry(metrics);
    const [a, b] = [conn('a:1'), conn('b:1')];
    registry.add(a);
    registry.add(b);
    expect(await gauge(metrics)).toBe(2);
    registry.remove(a);
    expect(await gauge(metrics)).toBe(1);
    expect(registry.live(b)).toBe(true);
    registry.clear();
    expect(registry.byDevice.size).toBe(0);
    expect(await gauge(metrics)).toBe(0);
    expect(registry.live(b)).toBe(false);
  });
});
