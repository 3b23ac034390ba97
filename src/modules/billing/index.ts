/**
 * Composition root of the billing module (BIL-1..9, BIL-12): documents (gapless numbering,
 * credit notes), subscriptions and termination notices, price changes, the customers' billing
 * profile and the public reference list, invoice PDFs, and the monthly run.
 *
 * Background work of a node (`start`): the billing run of the current Paris month, at start and
 * then once per Paris day (checked every 5 minutes, so the 1st's run starts minutes after midnight,
 * Paris time: the month change). The run is idempotent (one invoice per subscription and month, by
 * a unique key), so a node that was down catches up when it comes back, a subscription started
 * mid-month gets its prorata invoice (dated its start day) at the next daily run, and several
 * nodes may run it at once: the run takes a per-seller lock per page.
 */
import { lazyRoutes, type Core, type HavreModule } from '../../core.ts';
import { parisDate } from '../../lib/paris-date.ts';
import type { MeteringModule } from '../metering/index.ts';
import { createBillingDocuments } from './billing-documents.ts';
import { createBillingProfiles } from './billing-profile.ts';
import { createViesRegistry, offlineRegistry } from './vies.ts';
import { runBillingMonth, type BillingRunDeps, type RunOutcome } from './billing-run.ts';
import type { SellerIdentity } from './invoice-pdf.ts';
import type { MonthUsage } from './plans.ts';
import { createPriceChanges } from './price-changes.ts';
import { createSubscriptions } from './subscriptions.ts';

const CHECK_EVERY_MS = 5 * 60_000;

export function createBillingModule(core: Core, deps: { metering: Pick<MeteringModule, 'service'> }) {
  const { config, db, clock, audit, mailer } = core;
  const b = config.billing;
  const plans = b.plans;
  // The identity printed on every document, with the legal payment terms in force at issue.
  const identity: SellerIdentity = {
    name: b.seller.name, legalForm: b.seller.legalForm, shareCapital: b.seller.shareCapital, address: b.seller.address, siren: b.seller.siren, rcsCity: b.seller.rcsCity,
    vatNumber: b.seller.vatNumber, email: b.seller.email, latePenaltyFr: b.latePenalty.textFr, latePenaltyEn: b.latePenalty.textEn, recoveryIndemnityCents: b.recoveryIndemnityCents,
  };
  const seller = { code: b.seller.code, identity: identity as unknown as Record<string, unknown>, invoicePrefix: b.invoicePrefix, creditNotePrefix: b.creditNotePrefix, paymentTermsDays: b.paymentTermsDays };
  const documents = createBillingDocuments({ db, clock, seller });
  const subscriptions = createSubscriptions({ db, clock, audit, plans });
  const priceChanges = createPriceChanges({ db, clock, audit, mailer, plans, subscriptions });
  const profiles = createBillingProfiles({ db, clock, audit, registry: core.config.billing.viesCheck ? createViesRegistry({ baseUrl: core.config.billing.viesUrl }) : offlineRegistry });
  const runDeps: BillingRunDeps = {
    db, clock, plans, seller, mailer,
    // MET-1/2: the month's CPU hours and peaks of each tenant, as metered — one query per page.
    usageOf: async (tenantIds, month) => {
      const out = new Map<string, MonthUsage>();
      for (const [id, f] of await deps.metering.service.months(tenantIds, month)) {
        if (f.cpuHours > 0 || f.peakDatabaseBytes > 0 || f.peakStorageBytes > 0) out.set(id, f);
      }
      return out;
    },
  };

  /** BIL-3: the run of `month` (default: the current Paris month). Idempotent. */
  const runMonth = (month?: string, onPage?: BillingRunDeps['onPage']): Promise<RunOutcome> => runBillingMonth({ ...runDeps, onPage }, month ?? parisDate(clock.now()).slice(0, 7));

  const module = {
    documents,
    subscriptions,
    priceChanges,
    profiles,
    plans,
    runMonth,
    routes: lazyRoutes(async () => {
      const [customer, admin] = await Promise.all([import('./billing-routes.ts'), import('./billing-admin-routes.ts')]);
      return async (app) => {
        await customer.billingRoutes({ documents, subscriptions, priceChanges, profiles, db })(app);
        await admin.billingAdminRoutes({ documents, subscriptions, priceChanges })(app);
      };
    }),
    start: () => {
      let running: Promise<unknown> | null = null;
      let lastDay: string | null = null;
      const tick = () => {
        const today = parisDate(clock.now());
        if (running || today === lastDay) return;
        running = runMonth(today.slice(0, 7))
          .then((o) => {
            lastDay = today; // a failed run is tried again at the next check
            if (o.invoiced > 0) core.logger.info({ billing: o }, 'billing run: invoices issued');
          })
          .catch((err: unknown) => core.logger.warn({ err }, 'billing run failed'))
          .finally(() => (running = null));
      };
      tick();
      const timer = setInterval(tick, CHECK_EVERY_MS);
      timer.unref();
      return async () => {
        clearInterval(timer);
        await running;
      };
    },
  } satisfies HavreModule & Record<string, unknown>;
  return module;
}

export type BillingModule = ReturnType<typeof createBillingModule>;
