/**
 * The SQL of workspace records, generic over a RecordSpec: list (filters, `q` search, sort, keyset
 * cursor pagination), get, create, update, delete — each one statement on a connection to the
 * tenant's database as the tenant's role (workspace-access). PostgreSQL's own errors become typed
 * 4xx errors here (mapRecordError), so a bad reference or a duplicate number is a clear answer,
 * never a 500.
 *
 * Keyset pagination: rows are ordered by (sort column, id) and the cursor carries the last row's
 * pair, so a page costs the same at row 10 and at row 1,000,000, and inserts between two pages
 * neither repeat nor skip a row.
 */
import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { AppError, badRequest, conflict, notFound } from '../../lib/errors.ts';
import { isUuid } from '../../lib/ids.ts';
import type { FieldSpec, FieldType, RecordSpec } from './record-spec.ts';
import type { WorkspaceTarget } from './workspace-access.ts';

export type RecordView = Record<string, unknown>;

export interface ListQuery {
  limit?: number;
  cursor?: string;
  sort?: string;
  q?: string;
  [filter: string]: unknown;
}

export interface Page {
  items: RecordView[];
  /** Pass as `cursor` for the next page; null on the last page. */
  nextCursor: string | null;
}

export const DEFAULT_PAGE = 50;
export const MAX_PAGE = 200;

const CAST: Record<FieldType, string> = { uuid: 'uuid', text: 'text', date: 'date', timestamp: 'timestamptz', cents: 'bigint', int: 'int' };

const q = (identifier: string) => `"${identifier.replace(/"/g, '""')}"`;

function selectExpr(name: string, field: FieldSpec): string {
  // Dates and timestamps as ISO text made by PostgreSQL: pg would turn dates into JS Dates at
  // local midnight, and parsing then re-formatting every timestamp costs more than the query.
  // Microseconds are kept, so a timestamp cursor compares exactly.
  let column = q(field.column);
  if (field.type === 'date') column = `${column}::text`;
  else if (field.type === 'timestamp') column = `to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;
  return `${column} AS ${q(name)}`;
}

/** `SELECT` list of a spec (memoized per spec). */
const selectLists = new WeakMap<RecordSpec, string>();
function selectList(spec: RecordSpec): string {
  let list = selectLists.get(spec);
  if (!list) {
    list = Object.entries(spec.fields)
      .map(([name, field]) => selectExpr(name, field))
      .join(', ');
    selectLists.set(spec, list);
  }
  return list;
}

/** Fields whose value pg returns as a string but the API shows as a number (bigint cents). */
const numericFields = new WeakMap<RecordSpec, string[]>();
function numericFieldsOf(spec: RecordSpec): string[] {
  let list = numericFields.get(spec);
  if (!list) {
    list = Object.entries(spec.fields)
      .filter(([, f]) => f.type === 'cents' || f.type === 'int')
      .map(([n]) => n);
    numericFields.set(spec, list);
  }
  return list;
}

/**
 * A row as the API shows it. The SELECT list already names every field by its API name, with
 * dates and timestamps as ISO text (selectExpr), so the row is the view: only bigint cents become
 * numbers. The row has exactly the spec's fields — the SELECT list is the whitelist.
 */
export function presentRecord(spec: RecordSpec, row: Record<string, unknown>): RecordView {
  for (const name of numericFieldsOf(spec)) if (row[name] !== null && row[name] !== undefined) row[name] = Number(row[name]);
  return row;
}

function encodeCursor(sort: string, value: unknown, id: string): string {
  return Buffer.from(JSON.stringify([sort, value, id])).toString('base64url');
}

function decodeCursor(cursor: string, sort: string): [unknown, string] {
  try {
    const parsed: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (Array.isArray(parsed) && parsed.length === 3 && parsed[0] === sort && isUuid(String(parsed[2])) && ['string', 'number'].includes(typeof parsed[1])) {
      return [parsed[1], parsed[2] as string];
    }
  } catch {
    // fall through
  }
  throw badRequest('invalid_cursor', 'This cursor is not valid for this list and sort order; start again without it.');
}

function escapeLike(text: string): string {
  return text.replace(/[\\%_]/g, (c) => `\\${c}`);
}

/** Equality filters, ranges, search and parent of a list: the WHERE clause and its parameters. */
function whereOf(spec: RecordSpec, query: ListQuery, parentId: string | undefined, params: unknown[]): string[] {
  const where: string[] = [];
  if (spec.parent && parentId) {
    params.push(parentId);
    where.push(`${q(spec.parent.column)} = $${params.length}`);
  }
  for (const [name, field] of Object.entries(spec.fields)) {
    if (field.filter && query[name] !== undefined) {
      params.push(query[name]);
      where.push(`${q(field.column)} = $${params.length}::${CAST[field.type]}`);
    }
    if (field.range) {
      for (const [suffix, op] of [['From', '>='], ['To', '<=']] as const) {
        const value = query[name + suffix];
        if (value === undefined) continue;
        params.push(value);
        where.push(`${q(field.column)} ${op} $${params.length}::${CAST[field.type]}`);
      }
    }
  }
  if (spec.search && typeof query.q === 'string' && query.q.trim() !== '') {
    params.push(`%${escapeLike(query.q.trim())}%`);
    where.push(`(${spec.search.map((c) => `${q(c)} ILIKE $${params.length}`).join(' OR ')})`);
  }
  return where;
}

/** Lists records (see the file comment for the cursor). */
export async function listRecords(client: pg.ClientBase, spec: RecordSpec, query: ListQuery, parentId?: string): Promise<Page> {
  const sortParam = query.sort ?? spec.defaultSort;
  const descending = sortParam.startsWith('-');
  const sortName = descending ? sortParam.slice(1) : sortParam;
  const sortField = spec.fields[sortName];
  if (!sortField?.sort) throw badRequest('invalid_sort', `Sort by one of: ${sortableFields(spec).join(', ')} (prefix with - for descending).`);
  const limit = Math.min(Math.max(1, query.limit ?? DEFAULT_PAGE), MAX_PAGE);

  const params: unknown[] = [];
  const where = whereOf(spec, query, parentId, params);
  if (query.cursor) {
    const [value, id] = decodeCursor(query.cursor, sortParam);
    params.push(value, id);
    where.push(`(${q(sortField.column)}, id) ${descending ? '<' : '>'} ($${params.length - 1}::${CAST[sortField.type]}, $${params.length}::uuid)`);
  }
  params.push(limit + 1);
  const direction = descending ? 'DESC' : 'ASC';
  const text =
    `SELECT ${selectList(spec)} FROM ${q(spec.table)}` +
    (where.length ? ` WHERE ${where.join(' AND ')}` : '') +
    ` ORDER BY ${q(sortField.column)} ${direction}, id ${direction} LIMIT $${params.length}`;
  const { rows } = await client.query(text, params).catch((err: unknown) => mapRecordError(err, spec));
  const items = rows.slice(0, limit).map((r) => presentRecord(spec, r));
  const last = items[items.length - 1];
  const nextCursor = rows.length > limit && last ? encodeCursor(sortParam, last[sortName], last.id as string) : null;
  return { items, nextCursor };
}

export function sortableFields(spec: RecordSpec): string[] {
  return Object.entries(spec.fields)
    .filter(([, f]) => f.sort)
    .map(([n]) => n);
}

function recordNotFound(spec: RecordSpec): AppError {
  return notFound(`${spec.singular}_not_found`, `No such ${spec.singular.replace(/_/g, ' ')}.`);
}

function parentClause(spec: RecordSpec, parentId: string | undefined, params: unknown[]): string {
  if (!spec.parent) return '';
  params.push(parentId);
  return ` AND ${q(spec.parent.column)} = $${params.length}`;
}

/** 404 `<parent>_not_found` unless the parent record exists (nested routes). */
export async function assertParent(client: pg.ClientBase, spec: RecordSpec, parentId: string | undefined): Promise<void> {
  if (!spec.parent) return;
  const found = parentId !== undefined && isUuid(parentId) && (await client.query(`SELECT 1 FROM ${q(spec.parent.table)} WHERE id = $1`, [parentId])).rowCount === 1;
  if (!found) throw notFound(spec.parent.notFoundCode, 'No such parent record.');
}

export async function getRecord(client: pg.ClientBase, spec: RecordSpec, id: string, parentId?: string): Promise<RecordView> {
  if (!isUuid(id)) throw recordNotFound(spec);
  const params: unknown[] = [id];
  const { rows } = await client.query(`SELECT ${selectList(spec)} FROM ${q(spec.table)} WHERE id = $1${parentClause(spec, parentId, params)}`, params);
  if (!rows[0]) throw recordNotFound(spec);
  return presentRecord(spec, rows[0]);
}

/** API body → columns, for the writable fields present. */
function columnsOf(spec: RecordSpec, body: Record<string, unknown>): Record<string, unknown> {
  const columns: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(body)) {
    const field = spec.fields[name];
    if (!field?.input || value === undefined) continue;
    columns[field.column] = value;
  }
  return columns;
}

export async function createRecord(client: pg.ClientBase, spec: RecordSpec, body: Record<string, unknown>, target: WorkspaceTarget, now: Date, parentId?: string): Promise<RecordView> {
  await assertParent(client, spec, parentId);
  const columns: Record<string, unknown> = { id: randomUUID(), ...columnsOf(spec, body) };
  if (spec.parent) columns[spec.parent.column] = parentId;
  if ('created_at' in fieldColumns(spec)) columns.created_at = now;
  if ('updated_at' in fieldColumns(spec)) columns.updated_at = now;
  await spec.prepareCreate?.(client, columns, target);
  await spec.validate?.(client, columns, 'create');
  const names = Object.keys(columns);
  const text = `INSERT INTO ${q(spec.table)} (${names.map(q).join(', ')}) VALUES (${names.map((_, i) => `$${i + 1}`).join(', ')}) RETURNING ${selectList(spec)}`;
  const { rows } = await client.query(text, Object.values(columns)).catch((err: unknown) => mapRecordError(err, spec));
  return presentRecord(spec, rows[0]);
}

export async function updateRecord(client: pg.ClientBase, spec: RecordSpec, id: string, body: Record<string, unknown>, now: Date, parentId?: string): Promise<RecordView> {
  if (!isUuid(id)) throw recordNotFound(spec);
  await assertParent(client, spec, parentId);
  const columns = columnsOf(spec, body);
  if (Object.keys(columns).length === 0) throw badRequest('nothing_to_update', 'Send at least one field to change.');
  if ('updated_at' in fieldColumns(spec)) columns.updated_at = now;
  const params: unknown[] = [];
  const sets = Object.entries(columns).map(([column, value]) => {
    params.push(value);
    return `${q(column)} = $${params.length}`;
  });
  params.push(id);
  const text = `UPDATE ${q(spec.table)} SET ${sets.join(', ')} WHERE id = $${params.length}${parentClause(spec, parentId, params)} RETURNING ${selectList(spec)}`;
  const { rows } = await client.query(text, params).catch((err: unknown) => mapRecordError(err, spec));
  if (!rows[0]) throw recordNotFound(spec);
  if (spec.validate) await spec.validate(client, await rawRow(client, spec, id), 'update');
  return presentRecord(spec, rows[0]);
}

async function rawRow(client: pg.ClientBase, spec: RecordSpec, id: string): Promise<Record<string, unknown>> {
  const { rows } = await client.query(`SELECT * FROM ${q(spec.table)} WHERE id = $1`, [id]);
  return rows[0] ?? {};
}

export async function deleteRecord(client: pg.ClientBase, spec: RecordSpec, id: string, parentId?: string): Promise<void> {
  if (!isUuid(id)) throw recordNotFound(spec);
  const params: unknown[] = [id];
  const result = await client.query(`DELETE FROM ${q(spec.table)} WHERE id = $1${parentClause(spec, parentId, params)}`, params).catch((err: unknown) => mapRecordError(err, spec, 'delete'));
  if (result.rowCount !== 1) throw recordNotFound(spec);
}

const fieldColumnSets = new WeakMap<RecordSpec, Record<string, true>>();
function fieldColumns(spec: RecordSpec): Record<string, true> {
  let set = fieldColumnSets.get(spec);
  if (!set) {
    set = Object.fromEntries(Object.values(spec.fields).map((f) => [f.column, true as const]));
    fieldColumnSets.set(spec, set);
  }
  return set;
}

/** The API name of a column, for error details. */
function fieldOfColumn(spec: RecordSpec, column: string | undefined): string | undefined {
  return Object.entries(spec.fields).find(([, f]) => f.column === column)?.[0];
}

/**
 * PostgreSQL errors of a record statement → typed 4xx (anything else is rethrown: a 500 with a
 * request id). `op` = delete turns a foreign-key violation into "still in use".
 */
export function mapRecordError(err: unknown, spec: RecordSpec, op: 'write' | 'delete' = 'write'): never {
  const e = err as { code?: string; constraint?: string; column?: string; detail?: string };
  switch (e.code) {
    case '23505':
      throw conflict('duplicate_value', `Another ${spec.singular.replace(/_/g, ' ')} already has this value.`, { constraint: e.constraint });
    case '23503':
      if (op === 'delete') throw conflict('record_in_use', `This ${spec.singular.replace(/_/g, ' ')} is still referenced by other records; delete or move those first.`, { constraint: e.constraint });
      throw badRequest('unknown_reference', 'A referenced record does not exist in this workspace.', { constraint: e.constraint });
    case '23514':
      if (e.constraint === 'invoices_not_overpaid') throw conflict('overpayment', 'Payments would exceed the invoice amount.', { constraint: e.constraint });
      if (e.constraint === 'invoices_due_after_issue') throw badRequest('due_before_issue', 'The due date cannot be before the issue date.', { constraint: e.constraint });
      throw badRequest('invalid_value', 'A value breaks a rule of this record.', { constraint: e.constraint });
    case '23502':
      throw badRequest('missing_value', 'A required field is missing.', { field: fieldOfColumn(spec, e.column) });
    case '22001':
    case '22003':
    case '22007':
    case '22008':
    case '22P02':
      throw badRequest('invalid_value', 'A value has the wrong format or is out of range.');
    default:
      throw err;
  }
}
