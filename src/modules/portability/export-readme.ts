/**
 * README.txt of an export archive (EXP-1): what each file is and how to read it, in the language
 * of the member who asked for the export (French or English), so that the archive explains itself
 * years later without Havre.
 */

export interface ReadmeFacts {
  tenantName: string;
  takenAt: string;
  tables: readonly string[];
}

/** The README text in `locale`. */
export function exportReadme(locale: 'fr' | 'en', facts: ReadmeFacts): string {
  const tables = facts.tables.map((t) => `  - ${t}`).join('\n');
  return locale === 'fr'
    ? `Export Havre de l'espace « ${facts.tenantName} »
Données telles qu'elles étaient le ${facts.takenAt} (UTC), toutes tables lues dans le même instantané.

Tables :
${tables}

Chaque table est présente dans quatre formats, avec les mêmes lignes et les mêmes valeurs :

  csv/<table>.csv       CSV (RFC 4180), UTF-8 sans BOM, une ligne d'en-tête (noms des colonnes),
                        séparateur virgule, fins de ligne CRLF. Un champ contenant une virgule, un
                        guillemet ou un retour à la ligne est entre guillemets (guillemets doublés).
                        Valeur absente (NULL) : champ vide ; texte vide : "".
  json/<table>.jsonl    JSON Lines : un objet JSON par ligne, clés = noms des colonnes ; nombres
                        entiers et booléens typés, null pour une valeur absente, le reste en texte.
  xml/<table>.xml       <table name="…"><columns><column name="…" type="…"/>…</columns>
                        <rows><row><colonne>valeur</colonne>…</row>…</rows></table>
                        Valeur absente : <colonne nil="true"/>. Les caractères de contrôle que
                        XML 1.0 ne peut pas porter sont remplacés par U+FFFD (les fichiers JSON
                        les gardent tels quels).
  havre.xlsx            Classeur Excel / LibreOffice : une feuille par table (première ligne =
                        en-tête). Une table de plus de 1 048 575 lignes continue sur « <table> (2) ».

Conventions : dates au format ISO 8601 (AAAA-MM-JJ) ; horodatages en UTC tels que PostgreSQL
les écrit (AAAA-MM-JJ HH:MM:SS[.ffffff]+00, les fractions de seconde seulement quand il y en a) ; montants en centimes entiers (colonnes *_cents : 12345 = 123,45) ;
identifiants UUID.

  attachments/<id>/<nom du fichier>   les pièces jointes (id = colonne id de la table attachments)
  manifest.json         nombre de lignes et colonnes de chaque table, taille et SHA-256 de chaque
                        fichier de l'archive (vérifier : sha256sum <fichier>).

Cette archive se réimporte telle quelle dans un nouvel espace Havre vide (mêmes identifiants,
mêmes valeurs).
`
    : `Havre export of workspace "${facts.tenantName}"
Data as it was at ${facts.takenAt} (UTC), every table read in the same snapshot.

Tables:
${tables}

Every table comes in four formats, with the same rows and the same values:

  csv/<table>.csv       CSV (RFC 4180), UTF-8 without BOM, one header row (column names), comma
                        separated, CRLF line endings. A field holding a comma, a quote or a line
                        break is quoted (quotes doubled). Missing value (NULL): empty field; empty
                        text: "".
  json/<table>.jsonl    JSON Lines: one JSON object per line, keys = column names; integers and
                        booleans typed, null for a missing value, everything else as text.
  xml/<table>.xml       <table name="…"><columns><column name="…" type="…"/>…</columns>
                        <rows><row><column_name>value</column_name>…</row>…</rows></table>
                        Missing value: <column_name nil="true"/>. Control characters that XML 1.0
                        cannot carry become U+FFFD (the JSON files keep them exactly).
  havre.xlsx            Excel / LibreOffice workbook: one sheet per table (first row = header). A
                        table longer than 1,048,575 rows continues on "<table> (2)".

Conventions: dates ISO 8601 (YYYY-MM-DD); timestamps in UTC as PostgreSQL writes them
(YYYY-MM-DD HH:MM:SS[.ffffff]+00, with a fraction of a second only when there is one);
amounts in integer cents (*_cents columns: 12345 = 123.45); ids are UUIDs.

  attachments/<id>/<file name>   the attachments (id = the id column of the attachments table)
  manifest.json         row count and columns of every table, size and SHA-256 of every file in
                        the archive (check with: sha256sum <file>).

This archive imports as is into a new, empty Havre workspace (same ids, same values).
`;
}
