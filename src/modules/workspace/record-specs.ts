/**
 * The records of the workspace (APP-1), one spec each: companies, contacts, employees, invoices
 * (receivable) with their payments, and notes attached to any of them. The tables are in
 * schema/0001_records.sql; personal-data.ts declares which columns hold personal data.
 *
 * There is no field for special-category data (APP-4), and the body schemas are strict: an
 * unknown field (say `religion`) is refused with a 400, never silently dropped.
 */
import { z } from 'zod';
import { badRequest } from '../../lib/errors.ts';
import { cents, country, currency, isoDate, optionalEmail, optionalText, phone, requiredText, type FieldSpec, type RecordSpec } from './record-spec.ts';

const id: FieldSpec = { column: 'id', type: 'uuid' };
const createdAt: FieldSpec = { column: 'created_at', type: 'timestamp', sort: true };
const updatedAt: FieldSpec = { column: 'updated_at', type: 'timestamp', sort: true };
const reference = (column: string, filter = true): FieldSpec => ({ column, type: 'uuid', input: z.uuid().nullable(), filter });

export const companies: RecordSpec = {
  name: 'companies',
  table: 'companies',
  singular: 'company',
  defaultSort: 'name',
  search: ['name', 'registration_id', 'vat_number', 'city'],
  fields: {
    id,
    name: { column: 'name', type: 'text', input: requiredText(200), required: true, sort: true },
    registrationId: { column: 'registration_id', type: 'text', input: optionalText(50), filter: true },
    vatNumber: { column: 'vat_number', type: 'text', input: optionalText(20), filter: true },
    addressLine1: { column: 'address_line1', type: 'text', input: optionalText(200) },
    addressLine2: { column: 'address_line2', type: 'text', input: optionalText(200) },
    postalCode: { column: 'postal_code', type: 'text', input: optionalText(20) },
    city: { column: 'city', type: 'text', input: optionalText(100), filter: true },
    country: { column: 'country', type: 'text', input: country, filter: true },
    createdAt,
    updatedAt,
  },
};

export const contacts: RecordSpec = {
  name: 'contacts',
  table: 'contacts',
  singular: 'contact',
  defaultSort: 'lastName',
  search: ['last_name', 'first_name', 'email', 'position'],
  fields: {
    id,
    companyId: reference('company_id'),
    title: { column: 'title', type: 'text', input: z.enum(['mr', 'mrs', 'ms', 'mx', 'dr']).nullable(), output: z.enum(['mr', 'mrs', 'ms', 'mx', 'dr']) },
    firstName: { column: 'first_name', type: 'text', input: optionalText(100) },
    lastName: { column: 'last_name', type: 'text', input: requiredText(100), required: true, sort: true },
    email: { column: 'email', type: 'text', input: optionalEmail, filter: true },
    phone: { column: 'phone', type: 'text', input: phone },
    fax: { column: 'fax', type: 'text', input: phone },
    position: { column: 'position', type: 'text', input: optionalText(100) },
    createdAt,
    updatedAt,
  },
};

export const employees: RecordSpec = {
  name: 'employees',
  table: 'employees',
  singular: 'employee',
  defaultSort: 'lastName',
  search: ['last_name', 'first_name', 'email', 'job_title'],
  fields: {
    id,
    firstName: { column: 'first_name', type: 'text', input: requiredText(100), required: true },
    lastName: { column: 'last_name', type: 'text', input: requiredText(100), required: true, sort: true },
    email: { column: 'email', type: 'text', input: optionalEmail, filter: true },
    phone: { column: 'phone', type: 'text', input: phone },
    jobTitle: { column: 'job_title', type: 'text', input: optionalText(100) },
    hireDate: { column: 'hire_date', type: 'date', input: isoDate.nullable(), range: true },
    createdAt,
    updatedAt,
  },
};

const invoiceStatus = z.enum(['open', 'paid', 'cancelled']);

export const invoices: RecordSpec = {
  name: 'invoices',
  table: 'invoices',
  singular: 'invoice',
  defaultSort: '-issueDate',
  search: ['number'],
  fields: {
    id,
    companyId: { column: 'company_id', type: 'uuid', input: z.uuid(), required: true, filter: true },
    number: { column: 'number', type: 'text', input: requiredText(50), required: true, sort: true, filter: true },
    issueDate: { column: 'issue_date', type: 'date', input: isoDate, required: true, sort: true, range: true },
    // Optional at creation: issue date + the workspace's payment terms.
    dueDate: { column: 'due_date', type: 'date', input: isoDate, sort: true, range: true, output: z.iso.date() },
    amountCents: { column: 'amount_cents', type: 'cents', input: cents, required: true, sort: true },
    // Optional at creation: the workspace's default currency.
    currency: { column: 'currency', type: 'text', input: currency, filter: true, output: z.string() },
    // 'paid' is derived from the payments; a member may cancel an invoice, or set it open again.
    status: { column: 'status', type: 'text', input: z.enum(['open', 'cancelled']), filter: true, output: invoiceStatus },
    paidCents: { column: 'paid_cents', type: 'cents', output: z.number().int() },
    createdAt,
    updatedAt,
  },
  async prepareCreate(client, columns) {
    const { rows } = await client.query<{ default_currency: string; payment_terms_days: number }>('SELECT default_currency, payment_terms_days FROM workspace_settings');
    const settings = rows[0] ?? { default_currency: 'EUR', payment_terms_days: 30 };
    columns.currency ??= settings.default_currency;
    columns.status ??= 'open';
    if (columns.due_date === undefined) {
      const due = new Date(`${String(columns.issue_date)}T00:00:00Z`);
      due.setUTCDate(due.getUTCDate() + settings.payment_terms_days);
      columns.due_date = due.toISOString().slice(0, 10);
    }
  },
};

export const payments: RecordSpec = {
  name: 'payments',
  table: 'payments',
  singular: 'payment',
  defaultSort: 'paidOn',
  immutable: true,
  parent: { name: 'invoices', param: 'invoiceId', table: 'invoices', column: 'invoice_id', notFoundCode: 'invoice_not_found' },
  fields: {
    id,
    invoiceId: { column: 'invoice_id', type: 'uuid' },
    paidOn: { column: 'paid_on', type: 'date', input: isoDate, required: true, sort: true, range: true },
    amountCents: { column: 'amount_cents', type: 'cents', input: cents, required: true, sort: true },
    reference: { column: 'reference', type: 'text', input: optionalText(100) },
    createdAt,
  },
};

const SUBJECTS = ['company_id', 'contact_id', 'employee_id', 'invoice_id'] as const;

export const notes: RecordSpec = {
  name: 'notes',
  table: 'notes',
  singular: 'note',
  defaultSort: '-createdAt',
  search: ['body'],
  fields: {
    id,
    companyId: reference('company_id'),
    contactId: reference('contact_id'),
    employeeId: reference('employee_id'),
    invoiceId: reference('invoice_id'),
    body: { column: 'body', type: 'text', input: requiredText(10_000), required: true },
    authorUserId: { column: 'author_user_id', type: 'uuid' },
    createdAt,
    updatedAt,
  },
  async prepareCreate(_client, columns, target) {
    columns.author_user_id = target.userId;
  },
  async validate(_client, columns) {
    const subjects = SUBJECTS.filter((c) => columns[c] !== null && columns[c] !== undefined);
    if (subjects.length !== 1) throw badRequest('one_subject_required', 'A note is attached to exactly one record: give one of companyId, contactId, employeeId, invoiceId.');
  },
};

/** Every record kind served by the generic routes, in the order of the OpenAPI document. */
export const RECORD_SPECS: readonly RecordSpec[] = [companies, contacts, employees, invoices, payments, notes];
