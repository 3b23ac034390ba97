/**
 * The tables of a tenant's workspace as PostgreSQL itself describes them (EXP-1, EXP-3): read from
 * the catalog rather than from a list in the code, so that a table added by a later workspace
 * schema step is exported and imported without anyone remembering to add it here.
 *
 * Tables come in dependency order (a table after every table it references), which is the order
 * an import inserts them in.
 */
import type pg from 'pg';
import type { ColumnInfo, ColumnKind } from './formats.ts';

/** Workspace bookkeeping, recreated by the schema steps of any tenant: not part of the data. */
export const BOOKKEEPING_TABLES: readonly string[] = ['havre_meta', 'havre_schema_history'];

export interface TableInfo {
  name: string;
  columns: ColumnInfo[];
  primaryKey: string[];
  /** Tables this one references (foreign keys), itself excluded. */
  references: string[];
}

const KINDS: Record<string, ColumnKind> = {
  int2: 'integer',
  int4: 'integer',
  int8: 'integer',
  numeric: 'number',
  float4: 'number',
  float8: 'number',
  bool: 'boolean',
  json: 'json',
  jsonb: 'json',
  timestamptz: 'timestamptz',
  timestamp: 'timestamp',
  date: 'date',
};

/** `"name"`, for identifiers read from the catalog. */
export function ident(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** Every table of schema `public` except the bookkeeping ones, in dependency order. */
export async function describeTables(client: pg.ClientBase): Promise<TableInfo[]> {
  const columns = await client.query<{ table: string; column: string; type: string; typname: string }>(
    `SELECT c.relname AS table, a.attname AS column, format_type(a.atttypid, a.atttypmod) AS type, t.typname
       FROM pg_class c
       JOIN pg_namespace n ON n.oid = c.relnamespace
       JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
       JOIN pg_type t ON t.oid = a.atttypid
      WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition
      ORDER BY c.relname, a.attnum`,
  );
  const keys = await client.query<{ table: string; column: string }>(
    `SELECT c.relname AS table, a.attname AS column
       FROM pg_index i
       JOIN pg_class c ON c.oid = i.indrelid
       JOIN pg_namespace n ON n.oid = c.relnamespace
       JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = ANY (i.indkey)
      WHERE i.indisprimary AND n.nspname = 'public'
      ORDER BY c.relname, array_position(i.indkey::int2[], a.attnum)`,
  );
  const refs = await client.query<{ table: string; referenced: string }>(
    `SELECT DISTINCT c.relname AS table, r.relname AS referenced
       FROM pg_constraint k
       JOIN pg_class c ON c.oid = k.conrelid
       JOIN pg_class r ON r.oid = k.confrelid
       JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE k.contype = 'f' AND n.nspname = 'public' AND c.oid <> r.oid`,
  );
  const tables = new Map<string, TableInfo>();
  for (const row of columns.rows) {
    if (BOOKKEEPING_TABLES.includes(row.table)) continue;
    let table = tables.get(row.table);
    if (!table) tables.set(row.table, (table = { name: row.table, columns: [], primaryKey: [], references: [] }));
    table.columns.push({ name: row.column, type: row.type, kind: KINDS[row.typname] ?? 'text' });
  }
  for (const row of keys.rows) tables.get(row.table)?.primaryKey.push(row.column);
  for (const row of refs.rows) if (tables.has(row.referenced)) tables.get(row.table)?.references.push(row.referenced);
  return dependencyOrder([...tables.values()]);
}

/** Tables sorted so each comes after the ones it references (by name among equals); throws on a cycle. */
export function dependencyOrder(tables: readonly TableInfo[]): TableInfo[] {
  const pending = [...tables].sort((a, b) => a.name.localeCompare(b.name));
  const done = new Set<string>();
  const ordered: TableInfo[] = [];
  while (pending.length > 0) {
    const index = pending.findIndex((t) => t.references.every((r) => done.has(r)));
    if (index < 0) throw new Error(`foreign keys form a cycle between ${pending.map((t) => t.name).join(', ')}`);
    const [table] = pending.splice(index, 1);
    done.add(table!.name);
    ordered.push(table!);
  }
  return ordered;
}

/**
 * The SELECT expression of one column: its canonical text — for timestamps PostgreSQL's own ISO
 * output with the caller's session in UTC and DateStyle ISO (`2024-02-29 22:59:59.5+00`: the
 * fraction of a second only when there is one, exact to the microsecond, `BC` and `infinity`
 * kept; JavaScript's `Date`, Python's `fromisoformat` and PostgreSQL read it back). Rewriting it
 * into `2024-02-29T22:59:59.5Z` (three `replace`s per value) cost the tenant's database server a
 * sixth more CPU than the whole COPY (bench/results/export.md): the server is shared by tenants,
 * the text is as standard, so it stays as PostgreSQL writes it.
 */
function textExpr(column: ColumnInfo, forCopy: boolean): string {
  const c = ident(column.name);
  // COPY writes a value with its type's output function, which for these types is exactly their
  // `::text` (not so for boolean: `t` vs `true`, nor char(n): padded): the cast is then only
  // needed where the rows come back to Node (pg would parse typed values).
  return forCopy && SAME_TEXT_IN_COPY.test(column.type) ? c : `${c}::text`;
}

/** Types (as `format_type` names them) whose COPY text is their `::text`. */
const SAME_TEXT_IN_COPY = /^(uuid|text|character varying(\(\d+\))?|smallint|integer|bigint|numeric(\(\d+(,\d+)?\))?|date|jsonb?|timestamp(\(\d\))? with(out)? time zone)$/;

/**
 * The SELECT every format of an export reads `table` with: each column's text (named after the
 * column, so that COPY's header row is the column names), in column order. The caller's
 * transaction must have TimeZone UTC and DateStyle ISO (see `textExpr`). Rows come in the table's
 * storage order: an ORDER BY the primary key made PostgreSQL walk the key's index and fetch rows
 * all over the table (random UUID keys), which took a third of a 1 GB export's time. Every format
 * reads in the same read-only snapshot, where each read of a table returns the same rows.
 * `forCopy`: for `COPY (…) TO STDOUT`, whose text of each value is the same without the casts.
 */
export function selectRows(table: TableInfo, forCopy = false): string {
  return `SELECT ${table.columns.map((c) => `${textExpr(c, forCopy)} AS ${ident(c.name)}`).join(', ')} FROM ${ident(table.name)} AS t`;
}

/**
 * Every row of `table` as text values in column order, through a server-side cursor (`batch` rows
 * at a time: memory stays flat whatever the table's size). Must run inside a transaction; the
 * caller sets TimeZone UTC and DateStyle ISO for the dates (see `selectRows`).
 */
export async function* readRows(client: pg.ClientBase, table: TableInfo, batch = 2000): AsyncGenerator<(string | null)[]> {
  await client.query(`DECLARE havre_export_rows NO SCROLL CURSOR FOR ${selectRows(table)}`);
  try {
    for (;;) {
      const { rows } = await client.query<(string | null)[]>({ text: `FETCH ${batch} FROM havre_export_rows`, rowMode: 'array' });
      for (const row of rows) yield row;
      if (rows.length < batch) return;
    }
  } finally {
    await client.query('CLOSE havre_export_rows').catch(() => {});
  }
}

/** Row counts of `tables`, in the caller's snapshot. */
export async function countRows(client: pg.ClientBase, tables: readonly TableInfo[]): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  for (const table of tables) {
    const { rows } = await client.query<{ n: string }>(`SELECT count(*) AS n FROM ${ident(table.name)}`);
    counts.set(table.name, Number(rows[0]!.n));
  }
  return counts;
}
