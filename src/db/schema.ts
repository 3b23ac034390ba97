/**
 * Kysely table types of the control-plane database. Each module declares its own tables in a
 * `<module>-tables.ts` file; this file only assembles them, so modules do not edit one shared list.
 */
import type { AccountsTables } from '../modules/accounts/accounts-tables.ts';
import type { MeteringTables } from '../modules/metering/metering-tables.ts';
import type { BillingTables } from '../modules/billing/billing-tables.ts';
import type { BackupsTables } from '../modules/backups/backups-tables.ts';
import type { AuditTables } from '../modules/audit/audit-tables.ts';
import type { FleetTables } from '../modules/fleet/fleet-tables.ts';
import type { MailTables } from '../modules/mail/mail-tables.ts';
import type { RolloutsTables } from '../modules/rollouts/rollouts-tables.ts';
import type { TenantsTables } from '../modules/tenants/tenants-tables.ts';
import type { RetentionTables } from '../modules/retention/retention-tables.ts';
import type { DeletionTables } from '../modules/deletion/deletion-tables.ts';
import type { PortabilityTables } from '../modules/portability/portability-tables.ts';
import type { PaymentsTables } from '../modules/payments/payments-tables.ts';

export interface DB extends AccountsTables, AuditTables, MailTables, FleetTables, TenantsTables, RolloutsTables, BackupsTables, BillingTables, MeteringTables, DeletionTables, RetentionTables, PortabilityTables, PaymentsTables {}
