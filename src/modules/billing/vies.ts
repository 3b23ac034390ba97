/**
 * The VIES check of EU VAT numbers (BIL-8), pluggable: a registry answers true (registered), false
 * (not registered) or undefined (could not tell: offline, timeout, service down). Undefined never
 * blocks anyone — the format check (vat.ts) still applies — but a definite false refuses the
 * number, so a reverse charge is never granted to a number the EU says does not exist.
 *
 * The VIES REST service answers `GET <base>/ms/<country>/vat/<number>` with `{"isValid": …}`.
 */
export interface VatRegistry {
  check(country: string, vatNumber: string): Promise<boolean | undefined>;
}

/** No network (the default): every answer is "cannot tell". */
export const offlineRegistry: VatRegistry = { check: async () => undefined };

export function createViesRegistry(options: { baseUrl: string; timeoutMs?: number }): VatRegistry {
  const base = options.baseUrl.replace(/\/+$/, '');
  return {
    async check(country, vatNumber) {
      const prefix = country === 'GR' ? 'EL' : country;
      const number = vatNumber.startsWith(prefix) ? vatNumber.slice(prefix.length) : vatNumber;
      try {
        const res = await fetch(`${base}/ms/${encodeURIComponent(prefix)}/vat/${encodeURIComponent(number)}`, { signal: AbortSignal.timeout(options.timeoutMs ?? 5000), headers: { accept: 'application/json' } });
        if (!res.ok) return undefined;
        const body = (await res.json()) as { isValid?: unknown };
        return typeof body.isValid === 'boolean' ? body.isValid : undefined;
      } catch {
        return undefined;
      }
    },
  };
}
