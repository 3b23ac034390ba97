import { describe, expect, it, vi } from 'vitest';
import { createCpuAttribution } from './cpu-attribution.ts';

describe('CPU attribution', () => {
  it('[MET-1] shares a tick\'s CPU among tenants by their in-flight time; overlapping requests of one tenant count once; idle time goes to nobody', () => {
    let now = 0;
    vi.spyOn(performance, 'now').mockImplementation(() => now);
    const cpu = createCpuAttribution(0);
    // Tenant a: busy 0–600 ms with two overlapping requests; tenant b: busy 600–800 ms.
    const a1 = cpu.begin('a');
    now = 100;
    const a2 = cpu.begin('a');
    now = 500;
    a1();
    now = 600;
    a2();
    a2(); // ending twice changes nothing
    const b = cpu.begin('b');
    now = 800;
    b();
    now = 1000;
    cpu.tick(1000, 400); // 400 ms of CPU in the second
    const shares = cpu.drain();
    expect(shares.get('a')).toBeCloseTo(300, 6); // 600 of 800 busy ms
    expect(shares.get('b')).toBeCloseTo(100, 6); // 200 of 800
    // A second with nobody in flight: nothing attributed.
    now = 2000;
    cpu.tick(2000, 250);
    expect(cpu.drain().size).toBe(0);
    // A request spanning two ticks is counted in each.
    const c = cpu.begin('c');
    now = 3000;
    cpu.tick(3000, 50);
    now = 3500;
    c();
    cpu.tick(4000, 80);
    expect(cpu.drain().get('c')).toBeCloseTo(130, 6);
    vi.restoreAllMocks();
  });
});
