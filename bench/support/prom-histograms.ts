/**
 * Prometheus histograms read from the services' /metrics before and after a window, summed over
 * instances, so a bench can say where a message's time went in that window (the relay job's
 * wait in BullMQ, its store, the gateway's send → "stored") without timing anything itself.
 */

export interface HistogramSpec {
  /** The key in the result. */
  label: string;
  /** The histogram's name without `_bucket`/`_sum`/`_count`. */
  metric: string;
  /** Label pairs a series must carry, e.g. `queue="relay"`. */
  match?: string;
  /** The /metrics URLs to sum over. */
  urls: string[];
}

interface Snapshot {
  buckets: Map<number, number>;
  sum: number;
  count: number;
}

export interface WindowHistogram {
  count: number;
  mean_ms: number | null;
  /** Upper bound of the bucket that holds the median, linearly interpolated inside it. */
  p50_ms: number | null;
  p90_ms: number | null;
}

const SERIES = /^(\w+?)_(bucket|sum|count)(?:\{([^}]*)\})? (\S+)$/;

export function parseHistogram(text: string, metric: string, match?: string): Snapshot {
  const snap: Snapshot = { buckets: new Map(), sum: 0, count: 0 };
  for (const line of text.split('\n')) {
    const m = SERIES.exec(line);
    if (!m || m[1] !== metric) continue;
    const labels = m[3] ?? '';
    if (match && !labels.split(',').includes(match)) continue;
    const value = Number(m[4]);
    if (m[2] === 'sum') snap.sum += value;
    else if (m[2] === 'count') snap.count += value;
    else {
      const le = /le="([^"]+)"/.exec(labels)?.[1];
      if (le === undefined) continue;
      const bound = le === '+Inf' ? Infinity : Number(le);
      snap.buckets.set(bound, (snap.buckets.get(bound) ?? 0) + value);
    }
  }
  return snap;
}

function quantile(buckets: [number, number][], count: number, q: number): number | null {
  if (count === 0) return null;
  const rank = q * count;
  let lower = 0;
  let below = 0;
  for (const [bound, cumulative] of buckets) {
    if (cumulative >= rank) {
      if (bound === Infinity) return lower * 1000;
      const inBucket = cumulative - below;
      return (lower + (bound - lower) * (inBucket === 0 ? 1 : (rank - below) / inBucket)) * 1000;
    }
    lower = bound;
    below = cumulative;
  }
  return null;
}

export function windowOf(before: Snapshot, after: Snapshot): WindowHistogram {
  const count = after.count - before.count;
  const buckets = [...after.buckets.entries()].map(([b, v]) => [b, v - (before.buckets.get(b) ?? 0)] as [number, number]).sort((x, y) => x[0] - y[0]);
  const round = (v: number | null) => (v === null ? null : +v.toFixed(2));
  return {
    count,
    mean_ms: count > 0 ? round(((after.sum - before.sum) / count) * 1000) : null,
    p50_ms: round(quantile(buckets, count, 0.5)),
    p90_ms: round(quantile(buckets, count, 0.9)),
  };
}

/** A gauge a window reads at its end, per instance (in ms): prom-client's event-loop lag percentiles cover the time since the previous scrape. */
export interface GaugeSpec {
  label: string;
  metric: string;
  urls: string[];
  /** Subtracted from each value (ms), floored at 0. */
  offsetMs?: number;
}

export function parseGauge(text: string, metric: string): number | undefined {
  for (const line of text.split('\n')) {
    const m = /^(\w+)(?:\{[^}]*\})? (\S+)$/.exec(line);
    if (m && m[1] === metric) return Number(m[2]);
  }
  return undefined;
}

/**
 * Reads every spec's histogram now (which also starts the gauges' period); `stop()` reads them again
 * and answers the histograms' difference and each gauge per instance.
 */
export async function startHistogramWindow(specs: HistogramSpec[], gauges: GaugeSpec[] = []): Promise<{ stop: () => Promise<Record<string, WindowHistogram | (number | null)[]>> }> {
  const urls = [...new Set([...specs, ...gauges].flatMap((s) => s.urls))];
  const read = async () => new Map(await Promise.all(urls.map(async (u) => [u, await (await fetch(u)).text()] as const)));
  const snapshot = (texts: Map<string, string>, s: HistogramSpec): Snapshot => {
    const total: Snapshot = { buckets: new Map(), sum: 0, count: 0 };
    for (const u of s.urls) {
      const one = parseHistogram(texts.get(u)!, s.metric, s.match);
      total.sum += one.sum;
      total.count += one.count;
      for (const [b, v] of one.buckets) total.buckets.set(b, (total.buckets.get(b) ?? 0) + v);
    }
    return total;
  };
  const before = await read();
  return {
    stop: async () => {
      const after = await read();
      const gauge = (g: GaugeSpec) => g.urls.map((u) => {
        const v = parseGauge(after.get(u)!, g.metric);
        return v === undefined ? null : +Math.max(0, v * 1000 - (g.offsetMs ?? 0)).toFixed(2);
      });
      return {
        ...Object.fromEntries(specs.map((s) => [s.label, windowOf(snapshot(before, s), snapshot(after, s))])),
        ...Object.fromEntries(gauges.map((g) => [g.label, gauge(g)])),
      };
    },
  };
}
