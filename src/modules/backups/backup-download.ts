/**
 * Downloading a backup (BKP-5): a signed, expiring link, and the archive behind it.
 *
 * The link's token is sealed with the master key (AES-256-GCM, context `backup-download`): it
 * names the backup, the member who asked and the expiry, and cannot be forged or altered. The
 * archive is a plain tar that stock tools open:
 *
 *   manifest.json     tables with row counts and checksums, files with SHA-256, parts
 *   database.pgdump.gz  the pg_dump custom-format archive, gzipped (format /2; `database.pgdump`
 *                     for /1): `gunzip database.pgdump.gz`, `pg_restore --no-owner -d <db> database.pgdump`
 *   attachments.tar   the tenant's files, `attachments/<id>` (ids as in the attachments table)
 *   README.txt        these commands, in the customer's language
 *
 * Streamed: decrypted from a copy whose SHA-256 was checked first, never held in memory.
 */
import { PassThrough, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import type { SecretBox } from '../../lib/crypto.ts';
import { AppError } from '../../lib/errors.ts';
import { openPart, type ReaderDeps } from './backup-reader.ts';
import { databaseIsGzip, type BackupManifest } from './backup-writer.ts';
import type { BackupRow, CopyRow } from './backups-repo.ts';

const CONTEXT = 'backup-download';

export interface DownloadClaim {
  backupId: string;
  tenantId: string;
  userId: string;
  expiresAt: number;
}

export function signDownload(secrets: SecretBox, claim: DownloadClaim): string {
  return secrets.seal(JSON.stringify(claim), CONTEXT);
}

/** The claim of a valid, unexpired token; 404 otherwise (an altered token says nothing more). */
export function openDownload(secrets: SecretBox, token: string, now: Date): DownloadClaim {
  let claim: DownloadClaim;
  try {
    claim = JSON.parse(secrets.open(token, CONTEXT)) as DownloadClaim;
  } catch {
    throw new AppError(404, 'download_link_invalid', 'This download link is not valid.');
  }
  if (claim.expiresAt < now.getTime()) throw new AppError(410, 'download_link_expired', 'This download link has expired; ask for a new one.');
  return claim;
}

/** The database part's name in the download: gzip (format /2) is passed on as it is stored. */
export function databaseFileName(manifest: BackupManifest): string {
  return databaseIsGzip(manifest) ? 'database.pgdump.gz' : 'database.pgdump';
}

function readme(manifest: BackupManifest, locale: 'fr' | 'en'): string {
  const date = manifest.takenAt;
  const gz = databaseIsGzip(manifest);
  const db = databaseFileName(manifest).padEnd(15);
  return locale === 'fr'
    ? `Sauvegarde Havre du tenant « ${manifest.tenant.name} », prise le ${date} (UTC).

Contenu :
  manifest.json    tables (nombre de lignes, sommes de contrôle), fichiers (SHA-256)
  ${db}  archive pg_dump (format custom) de la base de données${gz ? ', compressée par gzip' : ''}
  attachments.tar  les pièces jointes, attachments/<id>

Restaurer avec les outils standard de PostgreSQL (${manifest.postgresVersion} ou plus récent) :
${gz ? '  gunzip database.pgdump.gz\n' : ''}  createdb ma_base
  pg_restore --no-owner --no-privileges -d ma_base database.pgdump
  tar xf attachments.tar
`
    : `Havre backup of tenant "${manifest.tenant.name}", taken at ${date} (UTC).

Contents:
  manifest.json    tables (row counts, checksums), files (SHA-256)
  ${db}  pg_dump archive (custom format) of the database${gz ? ', gzip-compressed' : ''}
  attachments.tar  the attachments, attachments/<id>

Restore with stock PostgreSQL tools (${manifest.postgresVersion} or newer):
${gz ? '  gunzip database.pgdump.gz\n' : ''}  createdb mydb
  pg_restore --no-owner --no-privileges -d mydb database.pgdump
  tar xf attachments.tar
`;
}

/** Adds a stream of unknown length as a tar entry: tar needs the size first, so the part's plain size is used. */
async function addEntry(pack: tar.Pack, name: string, size: number, body: Readable): Promise<void> {
  const entry = pack.entry({ name, size, mtime: new Date(0), mode: 0o644 });
  await pipeline(body, entry);
}

/** The downloadable archive of a complete backup, as a stream (errors end the stream). */
export async function downloadArchive(reader: ReaderDeps, backup: BackupRow, copies: readonly CopyRow[], locale: 'fr' | 'en'): Promise<Readable> {
  const manifest = backup.manifest as BackupManifest;
  // Open both parts before answering: a backup with no good copy is an error, not a broken download.
  const database = await openPart(reader, copies, 'database');
  const files = await openPart(reader, copies, 'files');
  const pack = tar.pack();
  const out = new PassThrough();
  void (async () => {
    const manifestText = Buffer.from(JSON.stringify(manifest, null, 2) + '\n');
    pack.entry({ name: 'manifest.json', mtime: new Date(0), mode: 0o644 }, manifestText);
    pack.entry({ name: 'README.txt', mtime: new Date(0), mode: 0o644 }, readme(manifest, locale));
    await addEntry(pack, databaseFileName(manifest), manifest.parts.database.plainSize, database.plain);
    await addEntry(pack, 'attachments.tar', manifest.parts.files.plainSize, files.plain);
    pack.finalize();
  })().catch((err: Error) => pack.destroy(err));
  pipeline(pack, out).catch((err: Error) => out.destroy(err));
  return out;
}
