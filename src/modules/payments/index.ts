/**
 * Composition root of the payments module (BIL-10, BIL-11): the provider adapters configured in
 * `payments` (bank transfer always; Stripe and GoCardless when their keys are set), the ledger
 * (paid or not, lifting suspensions), the service, dunning and the routes.
 *
 *   providers.ts, stripe-provider.ts, gocardless-provider.ts   the provider interface and adapters
 *   payments-ledger.ts    balance of an invoice, paid, lifting a non-payment suspension
 *   payments-service.ts   bank transfers, methods, charges, webhooks
 *   dunning-jobs.ts       reminders, suspension, surcharge: a function of (deps, now)
 *   dunning-termination.ts, dunning-mails.ts, payments-routes.ts, sensitive-data.ts
 *
 * Background work of a node (`start`, every `payments.dunning.tickMs`): `runDunning(deps, now)`.
 */
import { lazyRoutes, type Core, type HavreModule } from '../../core.ts';
import type { BillingModule } from '../billing/index.ts';
import type { DeletionModule } from '../deletion/index.ts';
import type { TenantsModule } from '../tenants/index.ts';
import { runDunning, type DunningDeps, type DunningReport } from './dunning-jobs.ts';
import { terminateForNonPayment } from './dunning-termination.ts';
import { createGoCardlessProvider, type GoCardlessApi } from './gocardless-provider.ts';
import { createLedger } from './payments-ledger.ts';
import { createPaymentsService, type PaymentsService } from './payments-service.ts';
import { createStripeProvider } from './stripe-provider.ts';

export type { PaymentsService, DunningReport };

export interface PaymentsModule extends HavreModule {
  service: PaymentsService;
  /** One dunning pass at the clock's `now` (tests, the CLI, and the loop). */
  runDunning(): Promise<DunningReport>;
}

export function createPaymentsModule(
  core: Core,
  deps: { tenants: Pick<TenantsModule, 'service'>; deletion: Pick<DeletionModule, 'service'>; billing: Pick<BillingModule, 'documents' | 'subscriptions'>; gocardlessClient?: GoCardlessApi },
): PaymentsModule {
  const { db, clock, audit, config } = core;
  const settings = config.payments;
  const ledger = createLedger({ clock, audit, tenants: deps.tenants.service });
  const service = createPaymentsService({
    db,
    clock,
    audit,
    ledger,
    providers: {
      stripe: settings.stripe ? createStripeProvider(settings.stripe) : undefined,
      gocardless: settings.gocardless ? createGoCardlessProvider(settings.gocardless, deps.gocardlessClient) : undefined,
    },
  });
  const dunningDeps: DunningDeps = { db, audit, mailer: core.mailer, ledger, tenants: deps.tenants.service, documents: deps.billing.documents, settings: settings.dunning };
  const subscriptions = deps.billing.subscriptions;
  const terminate = (invoiceId: string, input: Parameters<typeof terminateForNonPayment>[2]) => terminateForNonPayment({ db, clock, subscriptions, deletion: deps.deletion.service }, invoiceId, input);
  const run = () => runDunning(dunningDeps, clock.now());

  return {
    routes: lazyRoutes(async () => (await import('./payments-routes.ts')).paymentsRoutes(service, db, { terminate })),
    service,
    runDunning: run,
    start: () => {
      let running: Promise<unknown> | null = null;
      const tick = () => {
        if (running) return;
        running = run()
          .catch((err: unknown) => core.logger.warn({ err }, 'dunning pass failed'))
          .finally(() => (running = null));
      };
      const timer = setInterval(tick, settings.dunning.tickMs);
      timer.unref();
      return async () => {
        clearInterval(timer);
        await running;
      };
    },
  };
}
