/** Latency summaries for the benches. */
export interface LatencySummary {
  n: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

export function summarize(lat: number[]): LatencySummary {
  const s = Float64Array.from(lat).sort();
  const arr = Array.from(s);
  return {
    n: arr.length,
    p50: +percentile(arr, 50).toFixed(2),
    p95: +percentile(arr, 95).toFixed(2),
    p99: +percentile(arr, 99).toFixed(2),
    max: +(arr[arr.length - 1] ?? 0).toFixed(2),
  };
}

/** Merges per-process raw samples; only for summaries across load processes. */
export function mergeSamples(parts: number[][]): number[] {
  return parts.flat();
}
