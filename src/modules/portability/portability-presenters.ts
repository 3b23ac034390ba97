/** What the API shows of an export: a whitelist of fields, never the row (no worker ids, no paths). */
import { z } from 'zod';
import type { ExportRow } from './export-service.ts';

export const exportView = z.object({
  id: z.string(),
  tenantId: z.string(),
  state: z.enum(['running', 'complete', 'failed', 'expired']),
  phase: z.string().describe('csv, json, xml, xlsx, attachments, finishing, then complete'),
  progress: z.object({
    tablesDone: z.number().int().describe('Table files written (each table once per format: csv, json, xml, xlsx)'),
    tablesTotal: z.number().int(),
    rowsWritten: z.number().int(),
    rowsTotal: z.number().int(),
    percent: z.number().int().min(0).max(100),
  }),
  sizeBytes: z.number().int().nullable(),
  sha256: z.string().nullable(),
  error: z.string().nullable(),
  startedAt: z.string(),
  completedAt: z.string().nullable(),
  expiresAt: z.string().nullable(),
});

/** An export as the API shows it. */
export function presentExport(row: ExportRow): z.infer<typeof exportView> {
  const rowsTotal = Number(row.rows_total);
  const rowsWritten = Number(row.rows_written);
  const percent = row.state === 'complete' ? 100 : rowsTotal === 0 ? 0 : Math.min(99, Math.floor((100 * rowsWritten) / rowsTotal));
  return {
    id: row.id,
    tenantId: row.tenant_id,
    state: row.state,
    phase: row.phase,
    progress: { tablesDone: row.tables_done, tablesTotal: row.tables_total, rowsWritten, rowsTotal, percent },
    sizeBytes: row.size_bytes === null ? null : Number(row.size_bytes),
    sha256: row.sha256,
    // The cause stays in the row and the log (it may name internals); the customer gets what to do.
    error: row.state === 'failed' ? 'The export could not be completed; start a new one.' : null,
    startedAt: row.started_at.toISOString(),
    completedAt: row.completed_at?.toISOString() ?? null,
    expiresAt: row.expires_at?.toISOString() ?? null,
  };
}
