/**
 * For unit specs: a stub that throws on any member it was not given, so an unexpected call fails
 * the test instead of returning undefined.
 */
export function strictStub<T extends object>(impl: Partial<T>): T {
  return new Proxy(impl as T, {
    get(target, prop) {
      if (prop === 'then') return undefined;
      if (!(prop in target)) throw new Error(`unexpected call: ${String(prop)}`);
      return (target as Record<string | symbol, unknown>)[prop];
    },
  });
}
