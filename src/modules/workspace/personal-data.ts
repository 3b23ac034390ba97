/**
 * Every column of the workspace schema, declared in ONE place with whether it holds personal data
 * and in which category (APP-4, and the source the privacy tools — records of processing,
 * retention rules, exports — read later).
 *
 * A test compares this table with the columns of a freshly migrated tenant database: a column
 * added by a migration without being declared here fails the suite, and so does a declared column
 * that no longer exists. Another checks that no column (declared or not) is a field for
 * special-category data (GDPR art. 9: racial or ethnic origin, political opinions, religious or
 * philosophical beliefs, trade-union membership, genetic, biometric, health, sex life or sexual
 * orientation): there is none, and there must never be one.
 */

/** What kind of personal data a column holds; `null` in the table below means "not personal data". */
export type DataCategory =
  /** Names and civility of a natural person. */
  | 'identity'
  /** E-mail addresses, telephone and fax numbers of a natural person. */
  | 'contact_details'
  /** Job title, position, hire date: a person's professional life. */
  | 'professional'
  /** A company's identity and address: personal data when the company is a sole trader. */
  | 'business_identity'
  /** Free text written by members: may mention anyone, so it is treated as personal data. */
  | 'free_text'
  /** Uploaded files and their names: may show or concern anyone. */
  | 'file'
  /** The id of a Havre user (a member), pseudonymous inside the workspace. */
  | 'member_reference';

export const DATA_CATEGORIES: Record<DataCategory, { en: string; fr: string }> = {
  identity: { en: 'Identity (names, civility)', fr: 'Identité (noms, civilité)' },
  contact_details: { en: 'Contact details (e-mail, telephone, fax)', fr: 'Coordonnées (e-mail, téléphone, fax)' },
  professional: { en: 'Professional life (position, job title, hire date)', fr: 'Vie professionnelle (fonction, poste, date d’embauche)' },
  business_identity: { en: 'Business identity and address (personal data for sole traders)', fr: 'Identité et adresse de l’entreprise (donnée personnelle pour un entrepreneur individuel)' },
  free_text: { en: 'Free text written by members', fr: 'Texte libre saisi par les membres' },
  file: { en: 'Files and file names', fr: 'Fichiers et noms de fichiers' },
  member_reference: { en: 'Reference to a member of the workspace', fr: 'Référence à un membre de l’espace' },
};

type Columns = Readonly<Record<string, DataCategory | null>>;

/** table → column → category (null: not personal data). Keep in the order of the migrations. */
export const WORKSPACE_COLUMNS: Readonly<Record<string, Columns>> = {
  havre_meta: { singleton: null, schema_version: null, created_at: null },
  havre_schema_history: { version: null, name: null, checksum: null, applied_at: null },
  workspace_settings: {
    singleton: null,
    default_currency: null,
    payment_terms_days: null,
    reminder_locale: null,
    reminder_sender_name: 'identity',
    updated_at: null,
  },
  companies: {
    id: null,
    name: 'business_identity',
    registration_id: 'business_identity',
    vat_number: 'business_identity',
    address_line1: 'business_identity',
    address_line2: 'business_identity',
    postal_code: 'business_identity',
    city: 'business_identity',
    country: null,
    created_at: null,
    updated_at: null,
  },
  contacts: {
    id: null,
    company_id: null,
    title: 'identity',
    first_name: 'identity',
    last_name: 'identity',
    email: 'contact_details',
    phone: 'contact_details',
    fax: 'contact_details',
    position: 'professional',
    created_at: null,
    updated_at: null,
  },
  employees: {
    id: null,
    first_name: 'identity',
    last_name: 'identity',
    email: 'contact_details',
    phone: 'contact_details',
    job_title: 'professional',
    hire_date: 'professional',
    created_at: null,
    updated_at: null,
  },
  invoices: {
    id: null,
    company_id: null,
    number: null,
    issue_date: null,
    due_date: null,
    amount_cents: null,
    currency: null,
    status: null,
    paid_cents: null,
    created_at: null,
    updated_at: null,
  },
  payments: { id: null, invoice_id: null, paid_on: null, amount_cents: null, reference: null, created_at: null },
  notes: {
    id: null,
    company_id: null,
    contact_id: null,
    employee_id: null,
    invoice_id: null,
    body: 'free_text',
    author_user_id: 'member_reference',
    created_at: null,
    updated_at: null,
  },
  reminders: {
    id: null,
    invoice_id: null,
    contact_id: null,
    recipient_email: 'contact_details',
    locale: null,
    status: null,
    mail_id: null,
    sent_by_user_id: 'member_reference',
    created_at: null,
    queued_at: null,
  },
  attachments: {
    id: null,
    company_id: null,
    contact_id: null,
    employee_id: null,
    invoice_id: null,
    file_name: 'file',
    content_type: null,
    size_bytes: null,
    sha256: null,
    uploaded_by_user_id: 'member_reference',
    created_at: null,
  },
};

/**
 * Words that would name a special-category field (GDPR art. 9), in English and French. A column
 * or API field matching one of these must not exist (APP-4).
 */
export const SPECIAL_CATEGORY_PATTERN =
  /(race|racial|ethnic|ethni|origin_|religio|belief|croyance|politic|opinion|union|syndica|health|sante|santé|medical|medic|disab|handicap|genetic|genet|biometr|sexual|sexe|sex_|gender_identity|orientation|pregnan|grossesse)/i;

/** The personal-data columns of the workspace, with their category. */
export function personalColumns(): { table: string; column: string; category: DataCategory }[] {
  const out: { table: string; column: string; category: DataCategory }[] = [];
  for (const [table, columns] of Object.entries(WORKSPACE_COLUMNS)) {
    for (const [column, category] of Object.entries(columns)) if (category) out.push({ table, column, category });
  }
  return out;
}
