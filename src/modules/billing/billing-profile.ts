/**
 * The customer's billing profile and the public reference list.
 * - The VAT number decides the VAT treatment of the next invoices (BIL-8): it is format-checked
 *   against the customer's country (and by VIES when that check is on and reachable).
 * - BIL-12: a customer may refuse to be cited as a reference; the public list shows only
 *   customers who did not refuse and have a running subscription — refusal wins at once, and a
 *   former customer is never presented as a current one.
 */
import type { Db } from '../../db/db.ts';
import type { Clock } from '../../lib/clock.ts';
import { badRequest, notFound } from '../../lib/errors.ts';
import { parisDate } from '../../lib/paris-date.ts';
import type { AuditService } from '../audit/audit-service.ts';
import type { SubscriptionActor } from './subscriptions.ts';
import { normalizeVatNumber, vatNumberLooksValid } from './vat.ts';
import { offlineRegistry, type VatRegistry } from './vies.ts';

export interface BillingProfile {
  customerId: string;
  name: string;
  country: string | null;
  vatNumber: string | null;
  refusesReference: boolean;
}

export function createBillingProfiles(deps: { db: Db; clock: Clock; audit: AuditService; registry?: VatRegistry }) {
  const { db, clock } = deps;

  async function get(customerId: string): Promise<BillingProfile> {
    const c = await db.selectFrom('customers').select(['id', 'name', 'country', 'vat_number', 'refuses_reference']).where('id', '=', customerId).executeTakeFirst();
    if (!c) throw notFound('customer_not_found');
    return { customerId: c.id, name: c.name, country: c.country, vatNumber: c.vat_number, refusesReference: c.refuses_reference };
  }

  return {
    get,

    /** Changes the VAT number (null clears it) and/or the reference choice; audited. */
    async update(customerId: string, input: { vatNumber?: string | null; refusesReference?: boolean }, actor: SubscriptionActor): Promise<BillingProfile> {
      const current = await get(customerId);
      const set: { vat_number?: string | null; refuses_reference?: boolean; updated_at: Date } = { updated_at: clock.now() };
      if (input.vatNumber !== undefined) {
        if (input.vatNumber === null || input.vatNumber.trim() === '') set.vat_number = null;
        else {
          const v = normalizeVatNumber(input.vatNumber);
          if (!current.country) throw badRequest('country_required', 'Set the customer’s country before its VAT number.');
          if (!vatNumberLooksValid(current.country, v)) throw badRequest('invalid_vat_number', `"${v}" is not a VAT number of ${current.country}.`);
          // VIES, when on: a definite "not registered" refuses the number; "cannot tell" does not.
          if (current.country !== 'FR' && (await (deps.registry ?? offlineRegistry).check(current.country, v)) === false) {
            throw badRequest('vat_number_not_registered', `VIES says "${v}" is not a registered VAT number.`);
          }
          set.vat_number = v;
        }
      }
      if (input.refusesReference !== undefined) set.refuses_reference = input.refusesReference;
      await db.transaction().execute(async (trx) => {
        await trx.updateTable('customers').set(set).where('id', '=', customerId).execute();
        await deps.audit.record({ actorType: actor.type, actorId: actor.id ?? null, action: 'billing.profile_updated', subjectType: 'customer', subjectId: customerId, customerId, data: { vatNumber: set.vat_number, refusesReference: set.refuses_reference } }, trx);
      });
      return get(customerId);
    },

    /** BIL-12: names of customers who may be cited (did not refuse, subscription running today). */
    async publicReferences(): Promise<{ name: string }[]> {
      const today = parisDate(clock.now());
      return db
        .selectFrom('customers as c')
        .select('c.name')
        .where('c.refuses_reference', '=', false)
        .where(({ exists, selectFrom }) =>
          exists(
            selectFrom('subscriptions as s')
              .select('s.id')
              .whereRef('s.customer_id', '=', 'c.id')
              .where('s.started_on', '<=', today)
              .where((eb) => eb.or([eb('s.ends_on', 'is', null), eb('s.ends_on', '>=', today)])),
          ),
        )
        .orderBy('c.name')
        .execute();
    },
  };
}

export type BillingProfiles = ReturnType<typeof createBillingProfiles>;
