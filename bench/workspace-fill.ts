/**
 * Filling a tenant's workspace database with a realistic ≥ 1 GiB of records for the benchmarks
 * (backup, export): companies, contacts and notes of plausible French text, inserted in a few big
 * statements on a connection already acting as the tenant role.
 */
import pg from 'pg';
import type { BenchHavre } from './bench-kit.ts';

export const MB = 2 ** 20;

const WORDS = (
  'client fournisseur facture relance paiement contrat devis commande livraison rendez-vous appel courriel réunion ' +
  'proposition remise échéance acompte solde litige avoir virement chèque prélèvement comptable directeur gérant ' +
  'assistante commercial technicien chantier atelier dépôt entrepôt agence siège succursale Lyon Paris Nantes Lille ' +
  'Bordeaux Marseille Rennes Strasbourg Toulouse Grenoble Dijon Rouen Brest Caen Tours Angers Nîmes Metz Nancy ' +
  'attend confirme demande propose rappelle signale refuse accepte valide envoie reçoit prévoit annule reporte ' +
  'la le les un une des du de au aux pour avec sans sur sous dans après avant lundi mardi mercredi jeudi vendredi ' +
  'matin soir semaine prochaine dernière urgent important noté suivi dossier pièce jointe tarif remise nouvelle ancienne'
).split(' ');

/** A few thousand phrases of plausible French note text (what notes are made of). */
function phrases(n: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const len = 10 + Math.floor(Math.random() * 10);
    const words = Array.from({ length: len }, () => WORDS[Math.floor(Math.random() * WORDS.length)]!);
    words[0] = words[0]!.charAt(0).toUpperCase() + words[0]!.slice(1);
    out.push(words.join(' ') + '.');
  }
  return out;
}

export interface FillSizes {
  companies: number;
  contacts: number;
  notesPerBatch: number;
  maxNoteBatches: number;
  /** Notes are added by batches until the database is this big (+2 %). */
  minBytes: number;
}

/** Inserts companies, contacts, then notes until `minBytes`; returns how many notes and batches. */
export async function fillWorkspace(admin: pg.Client, sizes: FillSizes, log: (line: string) => void): Promise<{ notes: number; noteBatches: number }> {
  const size = async () => Number((await admin.query<{ s: string }>('SELECT pg_database_size(current_database())::text AS s')).rows[0]!.s);
  const p = phrases(4000);
  log(`filling the tenant database: ${sizes.companies} companies`);
  await admin.query(
    `INSERT INTO companies (id, name, registration_id, vat_number, address_line1, postal_code, city, country, created_at, updated_at)
     SELECT md5('c' || i)::uuid, 'Société ' || substr(md5(random()::text), 1, 10) || ' ' || ($2::text[])[1 + floor(random() * 8)::int],
            lpad((floor(random() * 1e9))::bigint::text, 9, '0'), 'FR' || lpad((floor(random() * 1e11))::bigint::text, 11, '0'),
            (1 + floor(random() * 200))::int || ' rue ' || ($1::text[])[1 + floor(random() * 4000)::int] , lpad((floor(random() * 95000) + 1000)::int::text, 5, '0'),
            ($2::text[])[1 + floor(random() * 8)::int], 'FR', now() - random() * interval '5 years', now()
       FROM generate_series(1, ${sizes.companies}) i`,
    [p.map((s) => s.split(' ').slice(0, 3).join(' ').slice(0, 150)), ['Lyon', 'Paris', 'Nantes', 'Lille', 'Bordeaux', 'Marseille', 'Rennes', 'Toulouse']],
  );
  log(`${sizes.contacts} contacts`);
  await admin.query(
    `INSERT INTO contacts (id, company_id, title, first_name, last_name, email, phone, position, created_at, updated_at)
     SELECT md5('p' || i)::uuid, md5('c' || (1 + floor(random() * ${sizes.companies}))::int)::uuid, (ARRAY['mr','mrs','ms','dr'])[1 + floor(random() * 4)::int],
            'Prénom' || substr(md5(random()::text), 1, 6), 'Nom' || substr(md5(random()::text), 1, 8), 'contact' || i || '@' || substr(md5(random()::text), 1, 8) || '.example',
            '+33 ' || lpad((floor(random() * 1e9))::bigint::text, 9, '0'), ($1::text[])[1 + floor(random() * 4000)::int], now() - random() * interval '5 years', now()
       FROM generate_series(1, ${sizes.contacts}) i`,
    [p.map((s) => s.slice(0, 90))],
  );
  let noteBatches = 0;
  while ((await size()) < sizes.minBytes * 1.02 && noteBatches < sizes.maxNoteBatches) {
    log(`notes batch ${noteBatches + 1} (${sizes.notesPerBatch}); database ${((await size()) / MB).toFixed(0)} MiB`);
    await admin.query(
      `INSERT INTO notes (id, company_id, contact_id, body, author_user_id, created_at, updated_at)
       SELECT gen_random_uuid(),
              CASE WHEN i % 3 = 0 THEN md5('c' || (1 + floor(random() * ${sizes.companies}))::int)::uuid END,
              CASE WHEN i % 3 <> 0 THEN md5('p' || (1 + floor(random() * ${sizes.contacts}))::int)::uuid END,
              ($1::text[])[1 + floor(random() * 4000)::int] || ' ' || ($1::text[])[1 + floor(random() * 4000)::int] || ' ' ||
              ($1::text[])[1 + floor(random() * 4000)::int] || ' Réf. ' || substr(md5(random()::text), 1, 12) || ' — ' || ($1::text[])[1 + floor(random() * 4000)::int],
              md5('u' || (i % 20))::uuid, now() - random() * interval '5 years', now()
         FROM generate_series(1, ${sizes.notesPerBatch}) i`,
      [p],
    );
    noteBatches++;
  }
  return { notes: noteBatches * sizes.notesPerBatch, noteBatches };
}

export interface BenchTenant {
  id: string;
  databaseId: string;
  databaseName: string;
  roleName: string;
}

/**
 * A tenant of a new customer on a new `bench-fr` server (the first region server of `havre`), its
 * workspace filled to `sizes` as the tenant role (admin connection, SET ROLE), then VACUUM ANALYZE
 * and CHECKPOINT. `admin` stays connected to the tenant database as the server admin (for sizes).
 */
export async function filledBenchTenant(havre: BenchHavre, name: string, sizes: FillSizes, log: (line: string) => void): Promise<{ tenant: BenchTenant; serverUrl: string; admin: pg.Client; fillMs: number; notes: number }> {
  const { core, modules } = havre;
  const serverUrl = havre.servers[0]!.url('postgres');
  await modules.fleet.servers.add({ name: 'bench-fr', region: 'fr', adminUrl: serverUrl, maxTenants: 100 });
  const now = new Date();
  const customer = await core.db.insertInto('customers').values({ name: 'Bench SAS', country: 'FR', postal_address: null, contact_user_id: null, dpo_name: null, dpo_email: null, created_at: now, updated_at: now }).returning('id').executeTakeFirstOrThrow();
  await modules.tenants.service.create({ customerId: customer.id, name, region: 'fr', actor: { type: 'cli' } });
  const tenant = await core.db
    .selectFrom('tenants')
    .innerJoin('tenant_databases', 'tenant_databases.id', 'tenants.tenant_database_id')
    .select(['tenants.id as id', 'tenant_databases.id as databaseId', 'tenant_databases.database_name as databaseName', 'tenant_databases.role_name as roleName'])
    .where('tenants.customer_id', '=', customer.id)
    .executeTakeFirstOrThrow();
  const url = new URL(serverUrl);
  url.pathname = `/${tenant.databaseName}`;
  const admin = new pg.Client({ connectionString: url.toString() });
  await admin.connect();
  const t = performance.now();
  await admin.query(`SET ROLE ${tenant.roleName}`);
  const { notes } = await fillWorkspace(admin, sizes, log);
  await admin.query('RESET ROLE');
  log('VACUUM ANALYZE, CHECKPOINT');
  await admin.query('VACUUM ANALYZE');
  await admin.query('CHECKPOINT');
  return { tenant, serverUrl, admin, fillMs: performance.now() - t, notes };
}
