/** `--name value` pairs over numeric defaults: known names take the number, anything else is ignored. */
export function numericArgs<T extends { [K in keyof T]: number }>(defaults: T, argv: string[]): T {
  const a: Record<string, number> = { ...defaults };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i]!.replace(/^--/, '');
    const v = argv[i + 1];
    if (k in a && v !== undefined) {
      a[k] = Number(v);
      i++;
    }
  }
  return a as T;
}
