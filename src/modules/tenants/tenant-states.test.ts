import { describe, expect, it } from 'vitest';
import { allowedFrom, canTransition, TENANT_STATES, TENANT_TRANSITIONS } from './tenant-states.ts';

describe('tenant lifecycle table', () => {
  it('[TEN-3] follows trial → active → suspended → cancelled → destroyed, with reactivation, and nothing leaves destroyed', () => {
    expect(canTransition('provisioning', 'trial')).toBe(true);
    expect(canTransition('trial', 'active')).toBe(true);
    expect(canTransition('active', 'suspended')).toBe(true);
    expect(canTransition('suspended', 'cancelled')).toBe(true);
    expect(canTransition('cancelled', 'destroyed')).toBe(true);
    expect(canTransition('cancelled', 'active')).toBe(true);
    expect(TENANT_TRANSITIONS.destroyed).toEqual([]);
    // Destruction only after cancellation (the grace period); nothing returns to provisioning.
    for (const from of TENANT_STATES) {
      if (from !== 'cancelled') expect(canTransition(from, 'destroyed')).toBe(false);
      expect(canTransition(from, 'provisioning')).toBe(false);
      expect(canTransition(from, from)).toBe(false);
    }
  });

  it('computes the compare-and-set source states, optionally narrowed', () => {
    expect(allowedFrom('suspended')).toEqual(['trial', 'active']);
    expect(allowedFrom('active', ['suspended'])).toEqual(['suspended']);
    expect(allowedFrom('active', ['provisioning'])).toEqual([]);
    expect(allowedFrom('destroyed')).toEqual(['cancelled']);
  });
});
