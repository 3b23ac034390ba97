/** Control-plane tables of the billing module (see migrations/20261126140000_billing_documents.sql). */

export type DocumentKind = 'invoice' | 'credit_note';

export interface BillingSequencesTable {
  seller: string;
  kind: DocumentKind;
  prefix: string;
  next_value: string;
}

export interface DocumentLine {
  labelFr: string;
  labelEn: string;
  quantity: number;
  unitCents: number;
  amountCents: number;
}

export interface BillingDocumentsTable {
  id: string;
  kind: DocumentKind;
  seller: string;
  state: 'draft' | 'issued';
  number: string | null;
  sequence_value: string | null;
  customer_id: string;
  corrects_id: string | null;
  period_start: string | null;
  period_end: string | null;
  currency: string;
  lines: DocumentLine[];
  net_cents: string;
  vat_rate_basis_points: number;
  vat_cents: string;
  gross_cents: string;
  vat_mention: { fr: string; en: string } | null;
  buyer: Record<string, unknown>;
  seller_identity: Record<string, unknown>;
  issue_date: string | null;
  due_date: string | null;
  idempotency_key: string | null;
  created_at: Date;
  issued_at: Date | null;
}

export interface BillingTables {
  billing_sequences: BillingSequencesTable;
  billing_documents: BillingDocumentsTable;
  subscriptions: SubscriptionsTable;
  price_changes: PriceChangesTable;
}

/** BIL-7: a scheduled price of a plan (migrations/20261126180000_billing_more.sql). */
export interface PriceChangesTable {
  id: string;
  plan: string;
  old_price_cents: string;
  new_price_cents: string;
  effective_date: string;
  announced_at: Date;
  objection_until: string;
  created_by: string | null;
  created_at: Date;
}

export interface SubscriptionsTable {
  id: string;
  tenant_id: string;
  customer_id: string;
  plan: string;
  started_on: string;
  next_plan: string | null;
  next_plan_from: string | null;
  termination_received_at: Date | null;
  termination_source: 'portal' | 'staff' | 'price_change' | null;
  ends_on: string | null;
  /** The price change a 'price_change' termination answered (BIL-7). */
  price_change_id?: string | null;
  created_at: Date;
  updated_at: Date;
}

export interface SubscriptionTables {
  subscriptions: SubscriptionsTable;
}
