/**
 * ACC-4 formats: each export section as one CSV file (RFC 4180: UTF-8, header row, CRLF, fields
 * quoted when needed), and all of them in one zip.
 *
 * Cells that a spreadsheet would run as a formula (starting with = + - @, tab or CR) get a leading
 * apostrophe: these files are meant to be opened in office software, and some values (a browser's
 * user agent, a mail subject) were not typed by the member.
 */
import { ZipWriter } from '../../lib/zip/zip-writer.ts';
import { EXPORT_SECTIONS, type DataRecord, type ExportSection, type MemberDataExport } from './member-data.ts';

/** File names of the sections, in kebab case. */
export const SECTION_FILES: Readonly<Record<ExportSection, string>> = {
  profile: 'profile.csv',
  memberships: 'memberships.csv',
  sessions: 'sessions.csv',
  apiTokens: 'api-tokens.csv',
  auditEntries: 'audit-entries.csv',
  mails: 'mails.csv',
  invitations: 'invitations.csv',
  signInFailures: 'sign-in-failures.csv',
};

/** Column names of each section (a section with no rows still has its header). */
const COLUMNS: Readonly<Record<ExportSection, string[]>> = {
  profile: ['id', 'email', 'name', 'phone', 'locale', 'emailVerifiedAt', 'staffRole', 'totpEnabled', 'createdAt', 'updatedAt'],
  memberships: ['customerId', 'customerName', 'role', 'since'],
  sessions: ['createdAt', 'lastSeenAt', 'expiresAt', 'revokedAt', 'ip', 'userAgent'],
  apiTokens: ['id', 'name', 'prefix', 'createdAt', 'lastUsedAt', 'expiresAt', 'revokedAt'],
  auditEntries: ['seq', 'at', 'action', 'actorType', 'actorId', 'subjectType', 'subjectId', 'customerId', 'ip', 'data'],
  mails: ['id', 'to', 'template', 'locale', 'subject', 'status', 'createdAt', 'sentAt', 'text'],
  invitations: ['id', 'customerName', 'role', 'createdAt', 'expiresAt', 'acceptedAt', 'revokedAt'],
  signInFailures: ['at', 'ip'],
};

function cell(value: unknown): string {
  if (value === null || value === undefined) return '';
  let text = typeof value === 'object' ? JSON.stringify(value) : String(value);
  if (/^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/** One section as CSV text. */
export function sectionCsv(section: ExportSection, rows: DataRecord[]): string {
  const columns = COLUMNS[section];
  const lines = [columns.join(','), ...rows.map((r) => columns.map((c) => cell(r[c])).join(','))];
  return lines.join('\r\n') + '\r\n';
}

/** Every section as its CSV file, plus `export.json`, in one zip (streamed). */
export function exportZip(data: MemberDataExport): NodeJS.ReadableStream {
  const zip = new ZipWriter();
  const mtime = new Date(data.generatedAt);
  const level = 6; // zlib's default: a member's files are small, size matters more than CPU here
  void (async () => {
    for (const section of EXPORT_SECTIONS) await zip.addEntry(SECTION_FILES[section], [Buffer.from(sectionCsv(section, data[section]), 'utf8')], { mtime, level });
    await zip.addEntry('export.json', [Buffer.from(JSON.stringify(data, null, 2), 'utf8')], { mtime, level });
    await zip.finish();
  })().catch((err: unknown) => zip.abort(err as Error));
  return zip.output;
}
