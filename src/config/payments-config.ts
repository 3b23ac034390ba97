/**
 * The `payments` block of the configuration (BIL-10, BIL-11): the providers' keys (absent: that
 * provider is off and its webhook answers 503; bank transfer is always on) and the dunning
 * timeline. `host`/`port`/`protocol` point the Stripe SDK elsewhere than api.stripe.com (stripe-mock,
 * a recording proxy, tests); GoCardless' SDK only knows its live and sandbox hosts.
 */
import { z } from 'zod';

export const paymentsSchema = z
  .object({
    stripe: z
      .object({
        secretKey: z.string().min(1),
        webhookSecret: z.string().min(1),
        host: z.string().min(1).optional(),
        port: z.number().int().min(1).max(65535).optional(),
        protocol: z.enum(['http', 'https']).optional(),
      })
      .strict()
      .optional(),
    gocardless: z
      .object({
        accessToken: z.string().min(1),
        webhookSecret: z.string().min(1),
        environment: z.enum(['sandbox', 'live']).default('sandbox'),
      })
      .strict()
      .optional(),
    dunning: z
      .object({
        /** Days after the due date on which a reminder goes out (one mail per step, FR/EN). */
        reminderDays: z.array(z.number().int().min(1).max(365)).min(1).default([1, 7, 14]),
        /** Days after the due date past which the customer's tenants are suspended and the surcharge invoiced. */
        graceDays: z.number().int().min(0).max(365).default(15),
        /** The surcharge on the unpaid amount, invoiced once as management fees (CGV 6.6: 50 %). */
        surchargePercent: z.number().int().min(0).max(100).default(50),
        /** How often a node runs the dunning pass (ms). */
        tickMs: z.number().int().min(1000).default(3_600_000),
      })
      .strict()
      .prefault({}),
  })
  .strict()
  .prefault({});

export type PaymentsConfig = z.infer<typeof paymentsSchema>;
