/**
 * CSV import of one table made by other tools (EXP-3): a column mapping (CSV header → API field of
 * the record kind) and a validation report, all or nothing.
 *
 * Each line is checked with the record spec's own field schemas (the same rules as the API), then
 * inserted through the same code as `POST /tenants/{id}/<records>` inside ONE transaction, each
 * line under a savepoint so that a database refusal (an unknown company id, a duplicate invoice
 * number) is reported for that line and the next lines are still checked. With any error the
 * transaction is rolled back and the report — per line, which field is wrong and why — is the
 * answer (400 `csv_import_invalid`): nothing is written.
 */
import type pg from 'pg';
import { AppError, badRequest } from '../../lib/errors.ts';
import type { FieldSpec, RecordSpec } from '../workspace/record-spec.ts';
import { companies, contacts, employees, invoices, notes } from '../workspace/record-specs.ts';
import { createRecord } from '../workspace/records-sql.ts';
import type { WorkspaceTarget } from '../workspace/workspace-access.ts';
import { CsvSyntaxError, parseCsv, type CsvRecord } from './formats.ts';

/** The record kinds a CSV can fill (payments belong to an invoice; attachments are files). */
export const CSV_TABLES: Record<string, RecordSpec> = { companies, contacts, employees, invoices, notes };
/** Lines reported at most (the count of errors is always complete). */
const MAX_REPORTED = 1000;

export interface CsvLineError {
  /** Line of the CSV file where the record starts (the header is line 1). */
  line: number;
  /** API field name, when the error is about one field. */
  field?: string;
  /** The CSV column it was read from. */
  column?: string;
  code: string;
  message: string;
}

export interface CsvReport {
  table: string;
  rowsRead: number;
  errorCount: number;
  errors: CsvLineError[];
}

/** The writable fields of a spec (a mapping may name only these). */
function writableFields(spec: RecordSpec): Record<string, FieldSpec> {
  return Object.fromEntries(Object.entries(spec.fields).filter(([, f]) => f.input));
}

/**
 * Checks the mapping against the header and the spec: every mapped header exists, every target is
 * a writable field (once), every required field is mapped. Without a mapping, headers that are
 * field names map to themselves. Returns field → column index.
 */
export function resolveMapping(spec: RecordSpec, header: readonly string[], mapping: Record<string, string> | undefined): Map<string, { index: number; column: string }> {
  const fields = writableFields(spec);
  const pairs = mapping ? Object.entries(mapping) : header.filter((h) => h in fields).map((h) => [h, h] as [string, string]);
  const out = new Map<string, { index: number; column: string }>();
  const problems: string[] = [];
  for (const [column, field] of pairs) {
    const index = header.indexOf(column);
    if (index < 0) problems.push(`column "${column}" is not in the header`);
    else if (!fields[field]) problems.push(`"${field}" is not a writable field of ${spec.name} (fields: ${Object.keys(fields).join(', ')})`);
    else if (out.has(field)) problems.push(`"${field}" is mapped twice`);
    else out.set(field, { index, column });
  }
  for (const [name, field] of Object.entries(fields)) if (field.required && !out.has(name)) problems.push(`required field "${name}" is not mapped`);
  if (problems.length > 0) throw badRequest('csv_mapping_invalid', `The column mapping does not fit: ${problems.join('; ')}.`, { problems });
  return out;
}

/** A CSV text value → the value the field's schema checks (empty = null; integers parsed). */
function valueOf(field: FieldSpec, raw: string): { value: unknown } | { error: string } {
  if (raw.trim() === '') return { value: null };
  if (field.type === 'cents' || field.type === 'int') {
    const text = raw.trim();
    if (!/^-?\d{1,15}$/.test(text)) return { error: field.type === 'cents' ? 'must be a whole number of cents (e.g. 12345 for 123.45)' : 'must be a whole number' };
    return { value: Number(text) };
  }
  return { value: field.type === 'date' ? raw.trim() : raw };
}

/** One line → a record body, or the errors of its fields. */
function bodyOf(spec: RecordSpec, record: CsvRecord, mapped: Map<string, { index: number; column: string }>, width: number): { body: Record<string, unknown>; errors: CsvLineError[] } {
  const errors: CsvLineError[] = [];
  const body: Record<string, unknown> = {};
  if (record.fields.length !== width) errors.push({ line: record.line, code: 'wrong_column_count', message: `has ${record.fields.length} columns, the header has ${width}` });
  for (const [name, { index, column }] of mapped) {
    const field = spec.fields[name]!;
    const converted = valueOf(field, record.fields[index] ?? '');
    if ('error' in converted) {
      errors.push({ line: record.line, field: name, column, code: 'invalid_value', message: converted.error });
      continue;
    }
    if (converted.value === null && field.required) {
      errors.push({ line: record.line, field: name, column, code: 'required', message: 'is required' });
      continue;
    }
    if (converted.value === null && !field.input!.safeParse(null).success) continue; // optional at creation (a default applies)
    const parsed = field.input!.safeParse(converted.value);
    if (!parsed.success) errors.push({ line: record.line, field: name, column, code: 'invalid_value', message: parsed.error.issues.map((i) => i.message).join('; ') });
    else body[name] = parsed.data;
  }
  return { body, errors };
}

/**
 * Imports `rows` (CSV text chunks) into `spec`'s table through `client`, which is inside the
 * caller's transaction; throws 400 `csv_import_invalid` with the report when any line is wrong
 * (the caller rolls back), else returns the report (no errors) of what was inserted.
 */
export async function importCsv(client: pg.ClientBase, spec: RecordSpec, text: AsyncIterable<string>, mapping: Record<string, string> | undefined, target: WorkspaceTarget, now: Date): Promise<CsvReport> {
  const report: CsvReport = { table: spec.name, rowsRead: 0, errorCount: 0, errors: [] };
  const add = (errors: CsvLineError[]) => {
    report.errorCount += errors.length;
    for (const e of errors) if (report.errors.length < MAX_REPORTED) report.errors.push(e);
  };
  let mapped: Map<string, { index: number; column: string }> | undefined;
  let width = 0;
  try {
    for await (const record of parseCsv(text)) {
      if (!mapped) {
        width = record.fields.length;
        mapped = resolveMapping(spec, record.fields.map((h) => h.trim()), mapping);
        continue;
      }
      report.rowsRead++;
      const { body, errors } = bodyOf(spec, record, mapped, width);
      if (errors.length > 0) {
        add(errors);
        continue;
      }
      // Checked by the database too (references, uniqueness): a refusal is this line's error.
      await client.query('SAVEPOINT havre_csv_line');
      try {
        await createRecord(client, spec, body, target, now);
        await client.query('RELEASE SAVEPOINT havre_csv_line');
      } catch (err) {
        await client.query('ROLLBACK TO SAVEPOINT havre_csv_line');
        if (!(err instanceof AppError) || err.status >= 500) throw err;
        const field = typeof err.details?.field === 'string' ? err.details.field : undefined;
        add([{ line: record.line, ...(field && { field }), code: err.code, message: err.message }]);
      }
    }
  } catch (err) {
    if (err instanceof CsvSyntaxError) throw badRequest('csv_syntax', `This is not a valid CSV file (RFC 4180): ${err.message}.`, { line: err.line });
    throw err;
  }
  if (!mapped) throw badRequest('csv_empty', 'The CSV file is empty: it needs a header row.');
  if (report.errorCount > 0) {
    throw new AppError(400, 'csv_import_invalid', `${report.errorCount} error(s) in ${report.rowsRead} line(s): nothing was imported.`, { report });
  }
  return report;
}
