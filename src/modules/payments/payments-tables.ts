/** Control-plane tables of the payments module (see migrations/20261126170000_payments.sql). */

export type PaymentProviderName = 'bank_transfer' | 'stripe' | 'gocardless';
export type PaymentState = 'pending' | 'succeeded' | 'failed';

export interface PaymentMethodsTable {
  id: string;
  customer_id: string;
  provider: 'stripe' | 'gocardless';
  provider_customer_id: string | null;
  provider_method_id: string;
  state: 'active' | 'revoked';
  created_at: Date;
  updated_at: Date;
}

export interface PaymentsTable {
  id: string;
  invoice_id: string;
  customer_id: string;
  provider: PaymentProviderName;
  provider_payment_id: string | null;
  method_id: string | null;
  idempotency_key: string;
  attempt: number;
  amount_cents: string;
  state: PaymentState;
  reference: string | null;
  received_at: Date | null;
  recorded_by: string | null;
  created_at: Date;
  updated_at: Date;
}

export interface PaymentEventsTable {
  provider: 'stripe' | 'gocardless';
  event_id: string;
  type: string;
  object_id: string | null;
  outcome: 'applied' | 'ignored';
  received_at: Date;
}

export interface InvoiceDunningTable {
  invoice_id: string;
  customer_id: string;
  paid_at: Date | null;
  reminder_step: number;
  suspended_at: Date | null;
  surcharge_invoice_id: string | null;
  terminated_at: Date | null;
  updated_at: Date;
}

export interface DunningSuspensionsTable {
  id: string;
  tenant_id: string;
  customer_id: string;
  invoice_id: string;
  suspended_at: Date;
  lifted_at: Date | null;
}

export interface PaymentsTables {
  payment_methods: PaymentMethodsTable;
  payments: PaymentsTable;
  payment_events: PaymentEventsTable;
  invoice_dunning: InvoiceDunningTable;
  dunning_suspensions: DunningSuspensionsTable;
}
