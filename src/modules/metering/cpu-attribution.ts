/**
 * Havre's own CPU per tenant (the second half of MET-1): the CPU this process spends serving a
 * tenant's requests.
 *
 * Node runs every request on one event loop, so a request's own CPU cannot be read directly
 * (`process.cpuUsage()` is process-wide, and async hooks that would slice it per callback cost more
 * than the metering is allowed to). Havre therefore *attributes*: every `tickMs` it reads the
 * process CPU used since the last tick and shares it among the tenants in proportion to the time
 * their requests were in flight during that tick. CPU used while no tenant request was in flight
 * (Havre's own housekeeping) is attributed to nobody. The figures are an estimate, and the usage
 * page says so; they add to the database time, which is exact.
 *
 * The per-tenant amounts are kept in memory and added to the day's row by `flush` (each node adds
 * its own share); a crash loses at most what was not flushed yet.
 */

export interface CpuAttribution {
  /** A request of `tenantId` starts; call the returned function when it ends. */
  begin(tenantId: string): () => void;
  /** Shares the CPU used since the previous tick (`cpuMs`) over the in-flight time of each tenant; `now` in ms. */
  tick(nowMs: number, cpuMs: number): void;
  /** The attributed CPU (ms) per tenant since the last drain, and resets it. */
  drain(): Map<string, number>;
}

export function createCpuAttribution(startMs: number): CpuAttribution {
  /** Requests in flight per tenant, and when their count last changed. */
  const inFlight = new Map<string, { count: number; since: number; busyMs: number }>();
  let lastTick = startMs;
  const attributed = new Map<string, number>();

  const settle = (entry: { count: number; since: number; busyMs: number }, nowMs: number) => {
    // Time with at least one request in flight counts once per tenant, however many overlap.
    if (entry.count > 0) entry.busyMs += Math.max(0, nowMs - Math.max(entry.since, lastTick));
    entry.since = nowMs;
  };

  return {
    begin(tenantId) {
      const now = performance.now();
      const entry = inFlight.get(tenantId) ?? { count: 0, since: now, busyMs: 0 };
      settle(entry, now);
      entry.count++;
      inFlight.set(tenantId, entry);
      let ended = false;
      return () => {
        if (ended) return;
        ended = true;
        const at = performance.now();
        settle(entry, at);
        entry.count--;
      };
    },
    tick(nowMs, cpuMs) {
      let total = 0;
      for (const entry of inFlight.values()) {
        settle(entry, nowMs);
        total += entry.busyMs;
      }
      if (total > 0 && cpuMs > 0) {
        for (const [tenantId, entry] of inFlight) {
          if (entry.busyMs > 0) attributed.set(tenantId, (attributed.get(tenantId) ?? 0) + (cpuMs * entry.busyMs) / total);
        }
      }
      for (const [tenantId, entry] of inFlight) {
        entry.busyMs = 0;
        if (entry.count === 0) inFlight.delete(tenantId);
      }
      lastTick = nowMs;
    },
    drain() {
      const out = new Map(attributed);
      attributed.clear();
      return out;
    },
  };
}
