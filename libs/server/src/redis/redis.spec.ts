import { ConfigError, loadConfig, redisTarget } from '../config/config';
import { nodeUrl, parseClusterNodes } from './redis';

describe('Redis Cluster settings', () => {
  it('parses REDIS_CLUSTER_NODES, IPv6 in brackets', () => {
    expect(parseClusterNodes(' redis-0.redis:6379, 10.0.0.2:7001 ,[::1]:7002,')).toEqual([
      { host: 'redis-0.redis', port: 6379 },
      { host: '10.0.0.2', port: 7001 },
      { host: '::1', port: 7002 },
    ]);
    expect(parseClusterNodes('')).toEqual([]);
    for (const bad of ['redis-0', 'redis:0', 'redis:70000', 'redis://a:1', 'a:1:2']) expect(() => parseClusterNodes(bad)).toThrow(bad);
  });

  it('targets the cluster when REDIS_CLUSTER_NODES is set, REDIS_URL otherwise; a bad list fails at boot', () => {
    expect(redisTarget(loadConfig('gateway', {}))).toEqual({ url: 'redis://127.0.0.1:6379' });
    expect(redisTarget(loadConfig('gateway', { REDIS_CLUSTER_NODES: '' }))).toEqual({ url: 'redis://127.0.0.1:6379' });
    const c = loadConfig('gateway', { REDIS_URL: 'rediss://:pw@ignored:6379/0', REDIS_CLUSTER_NODES: 'a:7000,b:7001' });
    expect(redisTarget(c)).toEqual({ url: 'rediss://:pw@ignored:6379/0', clusterNodes: [{ host: 'a', port: 7000 }, { host: 'b', port: 7001 }] });
    expect(() => loadConfig('gateway', { REDIS_CLUSTER_NODES: 'a:7000,b' })).toThrow(ConfigError);
    expect(() => loadConfig('gateway', { REDIS_CLUSTER_NODES: 'a:7000,b' })).toThrow(/REDIS_CLUSTER_NODES: must be a comma-separated list of host:port \("b" is not host:port\)/);
  });

  it("a node's URL keeps REDIS_URL's credentials and scheme, not its host or database", () => {
    expect(nodeUrl('rediss://user:p%40ss@ignored:6379/3', { host: '10.0.0.5', port: 7001 })).toBe('rediss://user:p%40ss@10.0.0.5:7001');
    expect(nodeUrl('redis://127.0.0.1:6379', { host: '::1', port: 7002 })).toBe('redis://[::1]:7002');
  });
});
