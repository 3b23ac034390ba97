/**
 * SEC-4: the append-only, hash-chained audit log.
 *
 * Each entry's hash is SHA-256 over the previous entry's hash and a canonical JSON of the entry,
 * so changing, removing or reordering any entry breaks every hash after it. Appends take a
 * transaction-scoped advisory lock so that concurrent writers on any number of API nodes still
 * produce one unbroken chain; the database triggers refuse UPDATE/DELETE/TRUNCATE.
 *
 * Personal data (ACC-5): an entry's IP address and the `email` of its data are not in the chain
 * but in `audit_personal`, next to it, with a random salt; the chained row holds their salted
 * SHA-256 (`personal_digest`). Erasing them (`erasePersonal` on account deletion, the retention
 * rule `audit_personal_data`) deletes that row: the chain still verifies, and what remains proves
 * what happened without saying to whom beyond ids. A personal row that was changed no longer
 * matches its digest: `verify` reports the entry as altered.
 *
 * Limitation (documented in docs/ARCHITECTURE.md): cutting entries off the *end* of the chain is
 * only detectable against a head recorded elsewhere (`verify({ expectHead })`), e.g. the head
 * printed by a previous `havre audit verify` run and kept by the operator.
 */
import { randomBytes } from 'node:crypto';
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

/** The keys of an entry's `data` that hold personal data, kept apart (see the file comment). */
export const PERSONAL_DATA_KEYS = ['email'] as const;

/** An entry's personal part as stored (absent once erased). */
export interface AuditPersonal {
  ip: string | null;
  data: Record<string, unknown>;
}

export interface AuditService {
  /** Appends an entry. Pass the caller's transaction so the entry commits (or not) with the change it records. */
  record(entry: AuditEntryInput, trx?: Executor): Promise<{ seq: string; hash: string }>;
  verify(options?: { expectHead?: { seq: string; hash: string } }): Promise<AuditVerification>;
  /** The personal parts still held of the entries `seqs` (readers merge them back, `withPersonal`). */
  personalOf(seqs: readonly string[], trx?: Executor): Promise<Map<string, AuditPersonal>>;
  /**
   * ACC-5: erases the personal parts about a person — those recorded with `personId` as the
   * acting or concerned user, and those holding `email` — and returns how many.
   */
  erasePersonal(person: { personId: string; email: string | null }, trx?: Executor): Promise<number>;
}

/** An audit row as a reader shows it: its IP and data with the personal part merged back, if still held. */
export function withPersonal<T extends { seq: string; ip: string | null; data: unknown }>(row: T, personal: ReadonlyMap<string, AuditPersonal>): T {
  const p = personal.get(String(row.seq));
  if (!p) return row;
  return { ...row, ip: p.ip ?? row.ip, data: { ...(row.data as Record<string, unknown>), ...p.data } };
}

/** The salted digest the chain holds of a personal part. */
function personalDigest(salt: string, personal: AuditPersonal): string {
  return sha256Hex(`${salt}\n${canonicalJson({ ip: personal.ip, data: personal.data })}`);
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
    // Absent from entries written before it existed, whose hashes stay what they were.
    personal_digest: e.personal_digest ?? undefined,
  });
  return sha256Hex(`${prevHash}\n${body}`);
}

export function createAuditService(deps: { db: Db; clock: Clock }): AuditService {
  const append = async (trx: Executor, entry: AuditEntryInput) => {
    await sql`SELECT pg_advisory_xact_lock(${AUDIT_LOCK_KEY})`.execute(trx);
    const last = await trx.selectFrom('audit_log').select(['seq', 'hash']).orderBy('seq', 'desc').limit(1).executeTakeFirst();
    // Round-trip the data through JSON so what we hash is exactly what jsonb will give back.
    const allData = JSON.parse(canonicalJson(entry.data ?? {})) as Record<string, unknown>;
    const data: Record<string, unknown> = {};
    const personalData: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(allData)) ((PERSONAL_DATA_KEYS as readonly string[]).includes(k) && v !== null ? personalData : data)[k] = v;
    const personal: AuditPersonal | null = entry.ip || Object.keys(personalData).length > 0 ? { ip: entry.ip ?? null, data: personalData } : null;
    const salt = personal ? randomBytes(16).toString('hex') : null;
    const fields: HashedFields = {
      seq: String(last ? BigInt(last.seq) + 1n : 1n),
      at: deps.clock.now(),
      actor_type: entry.actorType,
      actor_id: entry.actorId ?? null,
      action: entry.action,
      subject_type: entry.subjectType ?? null,
      subject_id: entry.subjectId ?? null,
      customer_id: entry.customerId ?? null,
      ip: null,
      data,
      personal_digest: personal && salt ? personalDigest(salt, personal) : null,
    };
    const prevHash = last?.hash ?? GENESIS;
    const hash = entryHash(prevHash, fields);
    await trx
      .insertInto('audit_log')
      .values({ ...fields, data: JSON.stringify(data), prev_hash: prevHash, hash })
      .execute();
    if (personal && salt) {
      // The person it is about: the acting user, else the user the entry is about.
      const personId = entry.actorType === 'user' || entry.actorType === 'staff' ? (entry.actorId ?? null) : entry.subjectType === 'user' ? (entry.subjectId ?? null) : null;
      await trx.insertInto('audit_personal').values({ seq: fields.seq, at: fields.at, person_id: personId, salt, ip: personal.ip, data: JSON.stringify(personal.data) }).execute();
    }
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
        const personal = new Map(
          (await deps.db.selectFrom('audit_personal').selectAll().where('seq', '>', String(after)).where('seq', '<=', batch.at(-1)!.seq).execute()).map((p) => [String(p.seq), p]),
        );
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
          const p = personal.get(row.seq);
          if (p && (row.personal_digest === null || personalDigest(p.salt, { ip: p.ip, data: p.data as Record<string, unknown> }) !== row.personal_digest)) {
            problems.push({ seq: row.seq, kind: 'altered', detail: 'its personal data does not match the digest in the chain' });
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

    async personalOf(seqs, trx) {
      if (seqs.length === 0) return new Map();
      // One array parameter, not one per entry (PostgreSQL takes at most 65,535).
      const rows = await (trx ?? deps.db).selectFrom('audit_personal').select(['seq', 'ip', 'data']).where(sql<boolean>`seq = ANY(${[...seqs]}::bigint[])`).execute();
      return new Map(rows.map((r) => [String(r.seq), { ip: r.ip, data: r.data as Record<string, unknown> }]));
    },

    async erasePersonal({ personId, email }, trx) {
      const erase = async (t: Executor) => {
        // The appends' lock first: every entry appended before it is committed and seen below.
        await sql`SELECT pg_advisory_xact_lock(${AUDIT_LOCK_KEY})`.execute(t);
        const res = await t
          .deleteFrom('audit_personal')
          .where((eb) => (email ? eb.or([eb('person_id', '=', personId), eb(sql`lower(data ->> 'email')`, '=', email.toLowerCase())]) : eb('person_id', '=', personId)))
          .executeTakeFirst();
        return Number(res.numDeletedRows);
      };
      if (trx && trx.isTransaction) return erase(trx);
      return deps.db.transaction().execute(erase);
    },
  };
}
