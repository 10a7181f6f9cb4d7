import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Histogram, Registry } from 'prom-client';
import { parseGauge, parseHistogram, startHistogramWindow, windowOf, type WindowHistogram } from '../bench/support/prom-histograms';

/** A real prom-client registry per "instance", served on /metrics as the services serve theirs. */
async function instance(): Promise<{ jobs: Histogram<'queue'>; url: string; close: () => Promise<void> }> {
  const registry = new Registry();
  const jobs = new Histogram({ name: 'umbra_job_wait_seconds', help: 'wait', labelNames: ['queue'], buckets: [0.001, 0.01, 0.1, 1], registers: [registry] });
  const server = http.createServer((_req, res) => {
    void registry.metrics().then((text) => res.end(text));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/metrics`;
  return { jobs, url, close: () => new Promise((r) => server.close(() => r())) };
}

describe("bench:delivery's server timings (Prometheus histograms over a window)", () => {
  it('counts only what a window observed, summed over instances and filtered by label', async () => {
    const a = await instance();
    const b = await instance();
    try {
      a.jobs.observe({ queue: 'relay' }, 5); // before the window: not counted
      a.jobs.observe({ queue: 'ack' }, 0.0005);
      const window = await startHistogramWindow([{ label: 'relay_wait', metric: 'umbra_job_wait_seconds', match: 'queue="relay"', urls: [a.url, b.url] }]);
      for (let i = 0; i < 6; i++) a.jobs.observe({ queue: 'relay' }, 0.005);
      for (let i = 0; i < 4; i++) b.jobs.observe({ queue: 'relay' }, 0.05);
      a.jobs.observe({ queue: 'ack' }, 0.5); // another queue: not counted
      const relay_wait = (await window.stop()).relay_wait as WindowHistogram;
      expect(relay_wait!.count).toBe(10);
      expect(relay_wait!.mean_ms).toBeCloseTo((6 * 5 + 4 * 50) / 10, 2);
      // The 5th of 10 is in the (1, 10] ms bucket, 6 of them: 1 + 9 × 5/6 ms.
      expect(relay_wait!.p50_ms).toBeCloseTo(8.5, 2);
      // The 9th is in (10, 100], which holds the 7th to the 10th: 10 + 90 × 3/4 ms.
      expect(relay_wait!.p90_ms).toBeCloseTo(77.5, 2);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('reads nothing as no observations, and +Inf as the bucket below it', () => {
    const text = ['x_bucket{le="0.1"} 0', 'x_bucket{le="+Inf"} 2', 'x_sum 20', 'x_count 2', 'xy_count 7'].join('\n');
    const none = parseHistogram('', 'x');
    expect(windowOf(none, none)).toEqual({ count: 0, mean_ms: null, p50_ms: null, p90_ms: null });
    expect(windowOf(none, parseHistogram(text, 'x'))).toEqual({ count: 2, mean_ms: 10_000, p50_ms: 100, p90_ms: 100 });
  });

  it('reads a gauge by its exact name, labels or not, and a missing one as undefined', () => {
    const text = ['# HELP umbra_nodejs_eventloop_lag_p50_seconds lag', 'umbra_nodejs_eventloop_lag_p50_seconds 0.0123', 'umbra_nodejs_eventloop_lag_p50_seconds_x 9', 'g{a="b"} 4'].join('\n');
    expect(parseGauge(text, 'umbra_nodejs_eventloop_lag_p50_seconds')).toBe(0.0123);
    expect(parseGauge(text, 'g')).toBe(4);
    expect(parseGauge(text, 'umbra_nodejs_eventloop_lag_p99_seconds')).toBeUndefined();
  });
});
