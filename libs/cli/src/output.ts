/** Human lines by default; with --json one JSON object per line, for scripts. Notes go to stderr. */
export class Output {
  constructor(readonly json: boolean) {}

  /** A result: `human` lines for people, `data` as one JSON line with --json. */
  result(human: string | string[], data: unknown): void {
    if (this.json) process.stdout.write(`${JSON.stringify(data)}\n`);
    else for (const line of Array.isArray(human) ? human : [human]) process.stdout.write(`${line}\n`);
  }

  /** Progress and state for the person watching (connection lost, waiting…), never parsed. */
  note(text: string): void {
    process.stderr.write(`umbra: ${text}\n`);
  }
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

export function formatDuration(seconds: number): string {
  for (const [unit, s] of [['w', 604_800], ['d', 86_400], ['h', 3600], ['m', 60]] as const) if (seconds % s === 0) return `${seconds / s}${unit}`;
  return `${seconds}s`;
}

export function formatTime(ms: number): string {
  return new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}
