/**
 * SEC-4: the append-only, hash-chained audit log.
 *
 * Each entry's hash is SHA-256 over the previous entry's hash and a canonical JSON of the entry,
 * so changing, removing or reordering any entry breaks every hash after it. Appends take a
 * transaction-scoped advisory lock so that concurrent writers on any number of API nodes still
 * produce one unbroken chain; the database triggers refuse UPDATE/DELETE/TRUNCATE.
 *
 * Limitation (documented in docs/ARCHITECTURE.md): cutting entries off the *end* of the chain is
 * only detectable against a head recorded elsewhere (`verify({ expectHead })`), e.g. the head
 * printed by a previous `havre audit verify` run and kept by the operator.
 */
import { sql } from 'kysely';
import type { Db, Executor } from '../../db/db.ts';
import type { Clock } from '../../lib/clock.ts';
import { sha256Hex } from '../../lib/crypto.ts';
import type { AuditActorType, AuditLogTable } from './audit-tables.ts';

/** Arbitrary constant: the advisory-lock key that serialises audit appends. */
const AUDIT_LOCK_KEY = 7_311_004_221;
const GENESIS = '0'.repeat(64);

export interface AuditEntryInput {
  actorType: AuditActorType;
  actorId?: string | null;
  /** Dotted verb, e.g. `auth.sign_in`, `tenant.transition`, `member.role_changed`. */
  action: string;
  subjectType?: string | null;
  subjectId?: string | null;
  customerId?: string | null;
  ip?: string | null;
  /** Non-secret context. Never put passwords, tokens or keys here. */
  data?: Record<string, unknown>;
}

export interface AuditProblem {
  seq: string;
  kind: 'altered' | 'broken_link' | 'missing' | 'head_mismatch';
  detail: string;
}

export interface AuditVerification {
  ok: boolean;
  checked: number;
  head: { seq: string; hash: string } | null;
  problems: AuditProblem[];
}

export interface AuditService {
  /** Appends an entry. Pass the caller's transaction so the entry commits (or not) with the change it records. */
  record(entry: AuditEntryInput, trx?: Executor): Promise<{ seq: string; hash: string }>;
  verify(options?: { expectHead?: { seq: string; hash: string } }): Promise<AuditVerification>;
}

/** JSON with object keys sorted at every level: the same value always gives the same text. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value ?? null);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}

type HashedFields = Omit<AuditLogTable, 'hash' | 'prev_hash'>;

function entryHash(prevHash: string, e: HashedFields): string {
  const body = canonicalJson({
    seq: String(e.seq),
    at: e.at.toISOString(),
    actor_type: e.actor_type,
    actor_id: e.actor_id,
    action: e.action,
    subject_type: e.subject_type,
    subject_id: e.subject_id,
    customer_id: e.customer_id,
    ip: e.ip,
    data: e.data,
  });
  return sha256Hex(`${prevHash}\n${body}`);
}

export function createAuditService(deps: { db: Db; clock: Clock }): AuditService {
  const append = async (trx: Executor, entry: AuditEntryInput) => {
    await sql`SELECT pg_advisory_xact_lock(${AUDIT_LOCK_KEY})`.execute(trx);
    const last = await trx.selectFrom('audit_log').select(['seq', 'hash']).orderBy('seq', 'desc').limit(1).executeTakeFirst();
    // Round-trip the data through JSON so what we hash is exactly what jsonb will give back.
    const data = JSON.parse(canonicalJson(entry.data ?? {})) as Record<string, unknown>;
    const fields: HashedFields = {
      seq: String(last ? BigInt(last.seq) + 1n : 1n),
      at: deps.clock.now(),
      actor_type: entry.actorType,
      actor_id: entry.actorId ?? null,
      action: entry.action,
      subject_type: entry.subjectType ?? null,
      subject_id: entry.subjectId ?? null,
      customer_id: entry.customerId ?? null,
      ip: entry.ip ?? null,
      data,
    };
    const prevHash = last?.hash ?? GENESIS;
    const hash = entryHash(prevHash, fields);
    await trx
      .insertInto('audit_log')
      .values({ ...fields, data: JSON.stringify(data), prev_hash: prevHash, hash })
      .execute();
    return { seq: fields.seq, hash };
  };

  return {
    async record(entry, trx) {
      if (trx && trx.isTransaction) return append(trx, entry);
      return deps.db.transaction().execute((t) => append(t, entry));
    },

    async verify(options) {
      const problems: AuditProblem[] = [];
      let prevHash = GENESIS;
      let expectedSeq = 1n;
      let checked = 0;
      let head: { seq: string; hash: string } | null = null;
      let after = 0n;
      for (;;) {
        const batch = await deps.db
          .selectFrom('audit_log')
          .selectAll()
          .where('seq', '>', String(after))
          .orderBy('seq')
          .limit(1000)
          .execute();
        if (batch.length === 0) break;
        for (const row of batch) {
          const seq = BigInt(row.seq);
          if (seq !== expectedSeq) {
            problems.push({ seq: row.seq, kind: 'missing', detail: `entries ${expectedSeq}..${seq - 1n} are missing` });
          }
          if (row.prev_hash !== prevHash) {
            problems.push({ seq: row.seq, kind: 'broken_link', detail: 'prev_hash does not match the previous entry' });
          }
          if (entryHash(row.prev_hash, row) !== row.hash) {
            problems.push({ seq: row.seq, kind: 'altered', detail: 'content does not match its hash' });
          }
          prevHash = row.hash;
          expectedSeq = seq + 1n;
          head = { seq: row.seq, hash: row.hash };
          checked++;
          after = seq;
        }
      }
      const expect = options?.expectHead;
      if (expect) {
        const at = await deps.db.selectFrom('audit_log').select('hash').where('seq', '=', expect.seq).executeTakeFirst();
        if (!at || at.hash !== expect.hash) {
          problems.push({ seq: expect.seq, kind: 'head_mismatch', detail: 'the recorded head is no longer in the chain (entries removed from the end?)' });
        }
      }
      return { ok: problems.length === 0, checked, head, problems };
    },
  };
}
