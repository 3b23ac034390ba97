/**
 * File attachments of the workspace (APP-1: documents, pictures, videos). The bytes live in the
 * storage (src/lib/storage) under the tenant's own area, `tenants/<tenantDatabaseId>/attachments/<id>`;
 * the row in the tenant's `attachments` table (schema/0003) exists only once the file is
 * completely stored, with its size and SHA-256.
 *
 * Crash safety, with no transaction spanning the storage and the database:
 *   upload  1. stream the body into storage (temp file + fsync + atomic link: a kill leaves only an
 *              invisible `.partial`), counting bytes (413 past maxBytes) and hashing; the first
 *              bytes must match the declared type (415) before anything is kept;
 *           2. INSERT the row and COMMIT. If the insert fails, the file is deleted; a kill between
 *              1 and 2 leaves a file without a row: an orphan.
 *   delete  DELETE the row and COMMIT, then delete the file; a kill in between leaves an orphan
 *           (as does deleting a company, whose attachments go by cascade).
 *   sweep   `sweepOrphans` deletes the files of a tenant's area that have no row and were last
 *           written before `olderThan` (an hour ago, say: never an upload still in progress), and
 *           the leftovers of interrupted writes.
 * So a file is never listed without being complete, and nothing a kill leaves behind survives
 * the next sweep.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import type pg from 'pg';
import type { Logger } from 'pino';
import type { Clock } from '../../lib/clock.ts';
import { AppError, badRequest } from '../../lib/errors.ts';
import { isUuid } from '../../lib/ids.ts';
import { StorageNotFoundError, type Storage, type StoredObject } from '../../lib/storage/storage.ts';
import type { Principal } from '../accounts/authn.ts';
import { allowedMediaType, headMatches, SNIFF_BYTES } from './attachments-sniff.ts';
import type { RecordSpec } from './record-spec.ts';
import { getRecord, mapRecordError, type RecordView } from './records-sql.ts';
import type { WorkspaceAccess, WorkspaceTarget } from './workspace-access.ts';

const SUBJECTS = {
  companyId: { column: 'company_id', table: 'companies' },
  contactId: { column: 'contact_id', table: 'contacts' },
  employeeId: { column: 'employee_id', table: 'employees' },
  invoiceId: { column: 'invoice_id', table: 'invoices' },
} as const;

export type SubjectParam = keyof typeof SUBJECTS;
export const SUBJECT_PARAMS = Object.keys(SUBJECTS) as SubjectParam[];

const subject = (column: string) => ({ column, type: 'uuid' as const, filter: true });

/**
 * Attachments as records: listed, read and deleted by the generic record routes; created only by
 * the upload route (noCreate) and never changed (immutable). `required` marks the columns that
 * are never null (they are set by the upload, not by a body).
 */
export const attachmentSpec: RecordSpec = {
  name: 'attachments',
  table: 'attachments',
  singular: 'attachment',
  defaultSort: '-createdAt',
  search: ['file_name'],
  immutable: true,
  noCreate: true,
  fields: {
    id: { column: 'id', type: 'uuid' },
    companyId: subject('company_id'),
    contactId: subject('contact_id'),
    employeeId: subject('employee_id'),
    invoiceId: subject('invoice_id'),
    fileName: { column: 'file_name', type: 'text', sort: true },
    contentType: { column: 'content_type', type: 'text', required: true, filter: true },
    sizeBytes: { column: 'size_bytes', type: 'int', required: true },
    sha256: { column: 'sha256', type: 'text', required: true },
    uploadedByUserId: { column: 'uploaded_by_user_id', type: 'uuid' },
    createdAt: { column: 'created_at', type: 'timestamp', sort: true },
  },
};

export interface AttachmentServiceDeps {
  access: WorkspaceAccess;
  storage: Storage;
  /** A connection to a tenant's database as its role (the sweep runs outside any request). */
  withTenant<T>(tenantDatabaseId: string, fn: (client: pg.PoolClient) => Promise<T>): Promise<T>;
  clock: Clock;
  /** Largest file accepted (config `workspace.attachments.maxBytes`). */
  maxBytes: number;
  logger: Pick<Logger, 'warn'>;
}

export interface UploadInput {
  fileName: string;
  /** The Content-Type header as sent. */
  contentType: string | undefined;
  /** The Content-Length header, when sent. */
  declaredLength: number | undefined;
  subjects: Partial<Record<SubjectParam, string>>;
  /** The request body, read chunk by chunk (never whole in memory). */
  body: AsyncIterable<Uint8Array>;
}

/** Where the tenant's attachments live in the storage. */
export function attachmentArea(tenantDatabaseId: string): string {
  return `tenants/${tenantDatabaseId}/attachments`;
}

export function attachmentKey(tenantDatabaseId: string, attachmentId: string): string {
  return `${attachmentArea(tenantDatabaseId)}/${attachmentId}`;
}

const tooLarge = (maxBytes: number) => new AppError(413, 'attachment_too_large', `An attachment is at most ${maxBytes} bytes.`, { maxBytes });

/** A file name as stored and shown: trimmed, NFC, 1–255 characters, no control characters or path separators. */
function cleanFileName(raw: string): string {
  const name = raw.normalize('NFC').trim();
  // eslint-disable-next-line no-control-regex
  if (name.length === 0 || name.length > 255 || /[\u0000-\u001f\u007f-\u009f/\\]/.test(name)) {
    throw badRequest('invalid_file_name', 'A file name is 1 to 255 characters, without control characters, "/" or "\\".');
  }
  return name;
}

/** The one subject of an upload (at most one of companyId, contactId, employeeId, invoiceId). */
function subjectOf(subjects: UploadInput['subjects']): { column: string; table: string; id: string } | undefined {
  const given = SUBJECT_PARAMS.filter((p) => subjects[p] !== undefined);
  if (given.length > 1) throw badRequest('one_subject_at_most', 'An attachment belongs to at most one record: give one of companyId, contactId, employeeId, invoiceId.');
  const param = given[0];
  return param ? { ...SUBJECTS[param], id: subjects[param]! } : undefined;
}

const unknownReference = () => badRequest('unknown_reference', 'A referenced record does not exist in this workspace.');

export function createAttachmentService(deps: AttachmentServiceDeps) {
  const { access, storage, maxBytes } = deps;

  /**
   * The body as stored: counted (413 past maxBytes, the rest is never read), hashed, and its first
   * SNIFF_BYTES checked against the declared type before the first byte is passed on (415).
   */
  async function* inspected(body: AsyncIterable<Uint8Array>, mediaType: string, tally: { size: number; sha256: string }): AsyncGenerator<Buffer> {
    const hash = createHash('sha256');
    let head: Buffer[] = [];
    let headBytes = 0;
    let checked = false;
    let size = 0;
    const check = (bytes: Buffer, complete: boolean) => {
      if (!headMatches(mediaType, bytes.subarray(0, SNIFF_BYTES), complete)) {
        throw new AppError(415, 'content_type_mismatch', `The file does not start like ${mediaType}: declare its real type.`, { contentType: mediaType });
      }
      checked = true;
    };
    try {
      for await (const raw of body) {
        const chunk = Buffer.isBuffer(raw) ? raw : Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
        size += chunk.length;
        if (size > maxBytes) throw tooLarge(maxBytes);
        hash.update(chunk);
        if (checked) {
          yield chunk;
          continue;
        }
        head.push(chunk);
        headBytes += chunk.length;
        if (headBytes >= SNIFF_BYTES) {
          const first = Buffer.concat(head);
          head = [];
          check(first, false);
          yield first;
        }
      }
    } catch (err) {
      if (err instanceof AppError) throw err;
      throw new AppError(400, 'upload_interrupted', 'The upload was interrupted before the end of the file; nothing was stored.');
    }
    if (!checked) {
      const whole = Buffer.concat(head);
      check(whole, true);
      if (whole.length > 0) yield whole;
    }
    tally.size = size;
    tally.sha256 = hash.digest('hex');
  }

  async function removeFile(key: string): Promise<void> {
    await storage.delete(key).catch((err: unknown) => deps.logger.warn({ err, key }, 'attachment file not deleted; left for the orphan sweep'));
  }

  return {
    /** Streams an upload into the tenant's area, then records it (see the file comment); returns the attachment. */
    async upload(principal: Principal, tenantId: string, input: UploadInput): Promise<RecordView> {
      // Membership first: a non-member learns nothing about the tenant, not even which types it takes.
      const subject = subjectOf(input.subjects);
      const target = await access.read(principal, tenantId, async (client, target) => {
        if (subject && (await client.query(`SELECT 1 FROM ${subject.table} WHERE id = $1`, [subject.id])).rowCount !== 1) throw unknownReference();
        return target;
      });
      const fileName = cleanFileName(input.fileName);
      const mediaType = allowedMediaType(input.contentType);
      if (!mediaType) throw new AppError(415, 'content_type_not_allowed', 'This type of file cannot be attached: documents (PDF, text, CSV, Word, Excel, PowerPoint, OpenDocument), pictures (PNG, JPEG, GIF, WebP) and videos (MP4, WebM, QuickTime) can.');
      if (input.declaredLength !== undefined && input.declaredLength > maxBytes) throw tooLarge(maxBytes);

      const id = randomUUID();
      const key = attachmentKey(target.tenantDatabaseId, id);
      const tally = { size: 0, sha256: '' };
      await storage.put(key, inspected(input.body, mediaType, tally));

      // Past this point the row may have committed even if an error is seen (a lost COMMIT answer):
      // the file is then left for the sweep, which keeps it if the row exists.
      let committing = false;
      try {
        return await access.write(principal, tenantId, async (client, writeTarget) => {
          // The tenant moved to another database while the file was streaming (a restore): keep nothing.
          if (writeTarget.tenantDatabaseId !== target.tenantDatabaseId) throw new AppError(409, 'tenant_moved', 'The workspace changed while the file was uploading; send it again.');
          const columns: Record<string, unknown> = { company_id: null, contact_id: null, employee_id: null, invoice_id: null };
          if (subject) columns[subject.column] = subject.id;
          await client
            .query(
              `INSERT INTO attachments (id, company_id, contact_id, employee_id, invoice_id, file_name, content_type, size_bytes, sha256, uploaded_by_user_id, created_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
              [id, columns.company_id, columns.contact_id, columns.employee_id, columns.invoice_id, fileName, mediaType, tally.size, tally.sha256, writeTarget.userId, deps.clock.now()],
            )
            .catch((err: unknown) => mapRecordError(err, attachmentSpec));
          const view = await getRecord(client, attachmentSpec, id);
          committing = true;
          return view;
        });
      } catch (err) {
        if (!committing) await removeFile(key);
        throw err;
      }
    },

    /**
     * An attachment's metadata, and a way to open its bytes (so that a conditional request is
     * answered without touching the storage).
     */
    async read(principal: Principal, tenantId: string, attachmentId: string): Promise<{ attachment: RecordView; open(): Promise<Readable> }> {
      const { attachment, tenantDatabaseId } = await access.read(principal, tenantId, async (client, target) => ({
        attachment: await getRecord(client, attachmentSpec, attachmentId),
        tenantDatabaseId: target.tenantDatabaseId,
      }));
      const key = attachmentKey(tenantDatabaseId, attachmentId);
      return {
        attachment,
        async open() {
          // A row without its complete file means the storage lost data: a 500, logged, never a short file.
          const { body, size } = await storage.get(key).catch((err: unknown) => {
            throw err instanceof StorageNotFoundError ? new Error(`attachment ${key} has a row but no file`) : err;
          });
          if (size !== attachment.sizeBytes) {
            body.destroy();
            throw new Error(`attachment ${key} is ${size} bytes, its row says ${String(attachment.sizeBytes)}`);
          }
          return body;
        },
      };
    },

    /** After a committed delete: the file goes too (a failure leaves an orphan for the sweep). */
    async afterDelete(target: WorkspaceTarget, attachmentId: string): Promise<void> {
      if (isUuid(attachmentId)) await removeFile(attachmentKey(target.tenantDatabaseId, attachmentId));
    },

    /**
     * Deletes the files of a tenant's area that have no row and were last written before
     * `olderThan`, and the leftovers of interrupted writes older than that. Pass a margin longer
     * than any upload (e.g. an hour ago): a file younger than that may be an upload between its
     * last byte and its INSERT.
     */
    async sweepOrphans(tenantDatabaseId: string, olderThan: Date): Promise<{ removed: number; kept: number; incomplete: number }> {
      const area = attachmentArea(tenantDatabaseId);
      let removed = 0;
      let kept = 0;
      let batch: StoredObject[] = [];
      const idOf = (object: StoredObject) => object.key.slice(area.length + 1);
      const flush = async () => {
        const ids = batch.map(idOf).filter(isUuid);
        const { rows } = await deps.withTenant(tenantDatabaseId, (client) => client.query<{ id: string }>('SELECT id::text AS id FROM attachments WHERE id = ANY($1::uuid[])', [ids]));
        const recorded = new Set(rows.map((r) => r.id));
        for (const object of batch) {
          if (recorded.has(idOf(object))) kept++;
          else if (await storage.delete(object.key)) removed++;
        }
        batch = [];
      };
      for await (const object of storage.list(area)) {
        if (object.modifiedAt >= olderThan) {
          kept++;
          continue;
        }
        batch.push(object);
        if (batch.length >= 500) await flush();
      }
      if (batch.length > 0) await flush();
      const incomplete = await storage.deleteIncomplete(area, olderThan);
      return { removed, kept, incomplete };
    },
  };
}

export type AttachmentService = ReturnType<typeof createAttachmentService>;
