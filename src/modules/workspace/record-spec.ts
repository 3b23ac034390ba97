/**
 * How a kind of workspace record is described once — its table, its fields (API name, column,
 * type, whether it can be written, filtered, sorted) — so that listing with filters, sort and
 * cursor pagination, reading, creating, updating and deleting (APP-3) is one implementation
 * (records-sql.ts, records-routes.ts) instead of five copies that drift apart.
 *
 * SQL identifiers only ever come from these specs (constants in the code); values are always
 * parameters.
 */
import type pg from 'pg';
import { z } from 'zod';
import type { WorkspaceTarget } from './workspace-access.ts';

export type FieldType = 'uuid' | 'text' | 'date' | 'timestamp' | 'cents' | 'int';

export interface FieldSpec {
  column: string;
  type: FieldType;
  /** Schema of a written value (create and update); absent: the field is read-only. */
  input?: z.ZodType;
  /** Must be given at creation. */
  required?: boolean;
  /** `?field=value` equality filter. */
  filter?: boolean;
  /** `?fieldFrom=&fieldTo=` inclusive range filter (dates). */
  range?: boolean;
  /** Allowed as `?sort=field` / `?sort=-field` (only NOT NULL columns: keyset pagination needs it). */
  sort?: boolean;
  /** Response schema of the field (defaults from `type` and `input`). */
  output?: z.ZodType;
}

export interface ParentSpec {
  /** URL segment of the parent collection, e.g. `invoices`. */
  name: string;
  /** Path parameter, e.g. `invoiceId`. */
  param: string;
  table: string;
  /** Column of this table pointing to the parent. */
  column: string;
  /** Error code when the parent does not exist, e.g. `invoice_not_found`. */
  notFoundCode: string;
}

export interface RecordSpec {
  /** URL segment and OpenAPI tag, e.g. `companies`. */
  name: string;
  table: string;
  /** For error codes and summaries, e.g. `company` → `company_not_found`. */
  singular: string;
  /** API name → field. Must include `id`, and the sort fields. */
  fields: Record<string, FieldSpec>;
  defaultSort: string;
  /** Columns searched (case-insensitive substring) by `?q=`. */
  search?: string[];
  parent?: ParentSpec;
  /** No PATCH route (e.g. payments: delete and record again). */
  immutable?: boolean;
  /** No generic POST route: records of this kind are created by a dedicated route (e.g. attachment uploads). */
  noCreate?: boolean;
  /** Fills defaults or server-set columns before an INSERT, in the write transaction. */
  prepareCreate?: (client: pg.ClientBase, columns: Record<string, unknown>, target: WorkspaceTarget) => Promise<void>;
  /** Checks the whole record before INSERT/UPDATE commits (e.g. one subject per note); may throw a 400. */
  validate?: (client: pg.ClientBase, columns: Record<string, unknown>, mode: 'create' | 'update') => Promise<void>;
}

/** Optional free text: trimmed; an empty string means "no value" (null). */
export function optionalText(max: number) {
  return z
    .string()
    .max(max)
    .nullable()
    .transform((v) => (v === null || v.trim() === '' ? null : v.trim()));
}

export function requiredText(max: number) {
  return z
    .string()
    .max(max)
    .transform((v) => v.trim())
    .refine((v) => v.length > 0, 'must not be empty');
}

export const isoDate = z.iso.date();
export const optionalEmail = z.email().max(254).nullable();
export const country = z.string().regex(/^[A-Z]{2}$/, 'an ISO 3166-1 alpha-2 code, e.g. FR').nullable();
export const currency = z.string().regex(/^[A-Z]{3}$/, 'an ISO 4217 code, e.g. EUR');
/** Integer cents, 1 cent to 1 billion units. */
export const cents = z.number().int().min(1).max(100_000_000_000);
export const phone = z
  .string()
  .max(30)
  .regex(/^[+0-9 ().\-/]*$/, 'digits, spaces and + ( ) . - / only')
  .nullable();

const outputOf: Record<FieldType, z.ZodType> = {
  uuid: z.uuid(),
  text: z.string(),
  date: z.iso.date(),
  timestamp: z.iso.datetime(),
  cents: z.number().int(),
  int: z.number().int(),
};

/** The response schema of one record: every field, nullable unless required/id/sort. */
export function recordOutputSchema(spec: RecordSpec): z.ZodObject {
  const shape: Record<string, z.ZodType> = {};
  for (const [name, field] of Object.entries(spec.fields)) {
    const base = field.output ?? outputOf[field.type];
    shape[name] = name === 'id' || field.required || field.sort ? base : base.nullable();
  }
  return z.object(shape);
}
