/**
 * The text formats of an export (EXP-1), each written row by row so that nothing is ever held
 * whole in memory: CSV (RFC 4180), JSON Lines, XML, and the SpreadsheetML parts of an XLSX
 * workbook (inline strings, no shared-strings table: a sheet can be streamed).
 *
 * Values arrive as PostgreSQL's text form (or null) with the column's kind, so every format shows
 * the same value: dates ISO 8601, timestamps in UTC as PostgreSQL writes them (ISO style), amounts as integer cents.
 */

/** How a column's values are typed in JSON and XLSX (CSV and XML are text either way). */
export type ColumnKind = 'integer' | 'number' | 'boolean' | 'json' | 'timestamptz' | 'timestamp' | 'date' | 'text';

export interface ColumnInfo {
  name: string;
  /** PostgreSQL's type, as `format_type` prints it (documented in the manifest). */
  type: string;
  kind: ColumnKind;
}

// ---------- CSV ----------

/**
 * One CSV field: quoted when it holds a quote, comma, CR or LF (RFC 4180), and an empty string is
 * written `""` so that it differs from a null (an empty, unquoted field).
 */
export function csvField(value: string | null): string {
  if (value === null) return '';
  if (value === '' || /[",\r\n]/.test(value)) return `"${value.replace(/"/g, '""')}"`;
  return value;
}

/** One CSV record with its CRLF line ending (RFC 4180). */
export function csvLine(values: readonly (string | null)[]): string {
  return values.map(csvField).join(',') + '\r\n';
}

const QUOTE = 0x22;
const LF = 0x0a;

/**
 * PostgreSQL's CSV (`COPY … (FORMAT csv)`) ends records with LF; RFC 4180 wants CRLF. This turns
 * the record terminators of a byte stream into CRLF and leaves the line breaks inside quoted
 * fields alone. Feed it the chunks in order: the quote state carries across them (a doubled quote
 * inside a quoted field closes and reopens it, which comes to the same). One buffer out per chunk
 * in; `records` counts the records ended so far (the header row included).
 */
export class CsvRecordEnds {
  /** Inside a quoted field at the end of the last chunk. */
  quoted = false;
  records = 0;
  private ends = new Int32Array(1024);

  convert(chunk: Buffer): Buffer {
    const len = chunk.length;
    let ends = this.ends;
    let n = 0;
    let pos = 0;
    let quoted = this.quoted;
    // Next quote / LF at or after `pos` (len: none in this chunk), searched again only once passed.
    let nextQuote = -1;
    let nextLf = -1;
    while (pos < len) {
      if (nextQuote < pos) {
        nextQuote = chunk.indexOf(QUOTE, pos);
        if (nextQuote < 0) nextQuote = len;
      }
      if (quoted) {
        if (nextQuote === len) break;
        quoted = false;
        pos = nextQuote + 1;
        continue;
      }
      if (nextLf < pos) {
        nextLf = chunk.indexOf(LF, pos);
        if (nextLf < 0) nextLf = len;
      }
      if (nextLf < nextQuote) {
        if (n === ends.length) {
          const grown = new Int32Array(ends.length * 2);
          grown.set(ends);
          this.ends = ends = grown;
        }
        ends[n++] = nextLf;
        pos = nextLf + 1;
      } else if (nextQuote < len) {
        quoted = true;
        pos = nextQuote + 1;
      } else break;
    }
    this.quoted = quoted;
    this.records += n;
    if (n === 0) return chunk;
    const out = Buffer.allocUnsafe(len + n);
    let from = 0;
    let to = 0;
    for (let i = 0; i < n; i++) {
      const end = ends[i]!;
      to += chunk.copy(out, to, from, end);
      out[to++] = 0x0d;
      out[to++] = LF;
      from = end + 1;
    }
    if (from < len) chunk.copy(out, to, from, len);
    return out;
  }
}

/** A record read from CSV, with the line where it starts (1-based, the header is line 1). */
export interface CsvRecord {
  line: number;
  fields: string[];
}

/**
 * A streaming RFC 4180 parser: quoted fields may hold commas, quotes (doubled) and line breaks;
 * CRLF, LF or CR end a record; blank lines are skipped; a UTF-8 BOM at the start is skipped.
 * Throws CsvSyntaxError on a quote inside an unquoted field, text after a closing quote, or an
 * unterminated quoted field, naming the line. The state survives chunk boundaries.
 */
export async function* parseCsv(chunks: AsyncIterable<string> | Iterable<string>): AsyncGenerator<CsvRecord> {
  type State = 'start' | 'unquoted' | 'quoted' | 'quote';
  let state: State = 'start';
  let fields: string[] = [];
  let field = '';
  let fieldQuoted = false;
  let line = 1;
  let recordLine = 1;
  let skipLf = false;
  let first = true;
  const out: CsvRecord[] = [];
  const endField = () => {
    fields.push(field);
    field = '';
    state = 'start';
  };
  const endRecord = (c: string) => {
    fields.push(field);
    const blank = fields.length === 1 && fields[0] === '' && !fieldQuoted;
    if (!blank) out.push({ line: recordLine, fields });
    fields = [];
    field = '';
    fieldQuoted = false;
    state = 'start';
    line++;
    recordLine = line;
    skipLf = c === '\r';
  };
  for await (const chunk of chunks) {
    let i = 0;
    if (first && chunk.length > 0) {
      first = false;
      if (chunk.charCodeAt(0) === 0xfeff) i = 1;
    }
    for (; i < chunk.length; i++) {
      const c = chunk[i]!;
      if (skipLf) {
        skipLf = false;
        if (c === '\n') continue;
      }
      switch (state) {
        case 'quoted':
          if (c === '"') state = 'quote';
          else {
            if (c === '\n' || c === '\r') {
              if (!(c === '\n' && field.endsWith('\r'))) line++;
            }
            field += c;
          }
          break;
        case 'quote':
          if (c === '"') {
            field += '"';
            state = 'quoted';
          } else if (c === ',') endField();
          else if (c === '\r' || c === '\n') endRecord(c);
          else throw new CsvSyntaxError(line, 'characters after the closing quote of a field');
          break;
        case 'start':
          fieldQuoted = false;
          if (c === '"') {
            state = 'quoted';
            fieldQuoted = true;
          } else if (c === ',') endField();
          else if (c === '\r' || c === '\n') endRecord(c);
          else {
            field = c;
            state = 'unquoted';
          }
          break;
        case 'unquoted':
          if (c === ',') endField();
          else if (c === '\r' || c === '\n') endRecord(c);
          else if (c === '"') throw new CsvSyntaxError(line, 'a quote inside an unquoted field (quote the whole field and double the quote)');
          else field += c;
          break;
      }
    }
    yield* out.splice(0);
  }
  if (state === 'quoted') throw new CsvSyntaxError(recordLine, 'a quoted field is not closed');
  if (state !== 'start' || fields.length > 0) {
    fields.push(field);
    out.push({ line: recordLine, fields });
  }
  yield* out.splice(0);
}

/** A CSV file that is not RFC 4180. */
export class CsvSyntaxError extends Error {
  override name = 'CsvSyntaxError';
  readonly line: number;
  constructor(line: number, reason: string) {
    super(`line ${line}: ${reason}`);
    this.line = line;
  }
}

// ---------- JSON ----------

/** A value as JSON: integers and booleans typed (big integers stay strings), json columns embedded, the rest strings. */
export function jsonValue(value: string | null, kind: ColumnKind): unknown {
  if (value === null) return null;
  switch (kind) {
    case 'integer': {
      const n = Number(value);
      return Number.isSafeInteger(n) ? n : value;
    }
    case 'boolean':
      return value === 'true';
    case 'json':
      return JSON.parse(value) as unknown;
    default:
      return value;
  }
}

/** One JSON Lines record: an object keyed by column name, then LF. */
export function jsonLine(columns: readonly ColumnInfo[], values: readonly (string | null)[]): string {
  const record: Record<string, unknown> = {};
  columns.forEach((c, i) => (record[c.name] = jsonValue(values[i] ?? null, c.kind)));
  return JSON.stringify(record) + '\n';
}

// ---------- XML ----------

/**
 * Text for XML 1.0: markup characters escaped; characters XML 1.0 cannot carry at all (C0
 * controls other than tab, CR, LF; lone surrogates; U+FFFE/FFFF) become U+FFFD. PostgreSQL text
 * can hold them; the JSON files keep them exactly (and are what an import reads).
 */
export function xmlText(value: string): string {
  return value
    .replace(/[&<>"]/g, (c) => (c === '&' ? '&amp;' : c === '<' ? '&lt;' : c === '>' ? '&gt;' : '&quot;'))
    .replace(/\r/g, '&#13;')
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '\ufffd'); // eslint-disable-line no-control-regex
}

/** The opening of `xml/<table>.xml`. */
export function xmlHead(table: string, columns: readonly ColumnInfo[]): string {
  const cols = columns.map((c) => `    <column name="${xmlText(c.name)}" type="${xmlText(c.type)}"/>\n`).join('');
  return `<?xml version="1.0" encoding="UTF-8"?>\n<table name="${xmlText(table)}" xmlns="https://havre.example/export/1">\n  <columns>\n${cols}  </columns>\n  <rows>\n`;
}

/** One `<row>`: an element per column, named after it; a null is `<column nil="true"/>`. */
export function xmlRow(columns: readonly ColumnInfo[], values: readonly (string | null)[]): string {
  const cells = columns.map((c, i) => {
    const v = values[i] ?? null;
    return v === null ? `<${c.name} nil="true"/>` : `<${c.name}>${xmlText(v)}</${c.name}>`;
  });
  return `    <row>${cells.join('')}</row>\n`;
}

export const XML_TAIL = '  </rows>\n</table>\n';

// ---------- XLSX (SpreadsheetML) ----------

/** Rows per sheet, header included (Excel's limit); a longer table continues on the next sheet. */
export const XLSX_MAX_ROWS = 1_048_576;

/** The column letters of a 0-based index: A … Z, AA … */
export function columnLetters(index: number): string {
  let s = '';
  for (let n = index + 1; n > 0; n = Math.floor((n - 1) / 26)) s = String.fromCharCode(65 + ((n - 1) % 26)) + s;
  return s;
}

/** Text for a cell: XML-escaped, and `_xHHHH_` sequences protected (Excel would decode them). */
function cellText(value: string): string {
  return xmlText(value.replace(/_(x[0-9A-Fa-f]{4}_)/g, '_x005F_$1'));
}

/** One `<row>` of a sheet; numbers and booleans typed, everything else an inline string (never a formula). */
export function xlsxRow(rowNumber: number, kinds: readonly ColumnKind[] | null, values: readonly (string | null)[]): string {
  const cells = values.map((v, i) => {
    if (v === null) return '';
    const ref = `${columnLetters(i)}${rowNumber}`;
    const kind = kinds?.[i] ?? 'text';
    if (kind === 'integer' && Math.abs(Number(v)) <= Number.MAX_SAFE_INTEGER) return `<c r="${ref}"><v>${v}</v></c>`;
    if (kind === 'boolean') return `<c r="${ref}" t="b"><v>${v === 'true' ? 1 : 0}</v></c>`;
    return `<c r="${ref}" t="inlineStr"><is><t xml:space="preserve">${cellText(v)}</t></is></c>`;
  });
  return `<row r="${rowNumber}">${cells.join('')}</row>`;
}

export const SHEET_HEAD = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>';
export const SHEET_TAIL = '</sheetData></worksheet>';

/** A sheet name (≤ 31 characters, none of `[]:*?/\`), with ` (n)` for continuation sheets. */
export function sheetName(table: string, part: number): string {
  const suffix = part > 1 ? ` (${part})` : '';
  return table.replace(/[[\]:*?/\\]/g, '_').slice(0, 31 - suffix.length) + suffix;
}

/** The fixed parts of a workbook whose sheets are `sheets` (in order: sheet1.xml, sheet2.xml…). */
export function workbookParts(sheets: readonly string[]): Record<string, string> {
  const xml = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n';
  const ns = 'http://schemas.openxmlformats.org';
  const overrides = sheets.map((_, i) => `<Override PartName="/xl/worksheets/sheet${i + 1}.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>`).join('');
  return {
    '[Content_Types].xml':
      `${xml}<Types xmlns="${ns}/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>` +
      `<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>` +
      `<Override PartName="/xl/styles.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>${overrides}</Types>`,
    '_rels/.rels': `${xml}<Relationships xmlns="${ns}/package/2006/relationships"><Relationship Id="rId1" Type="${ns}/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>`,
    'xl/workbook.xml':
      `${xml}<workbook xmlns="${ns}/spreadsheetml/2006/main" xmlns:r="${ns}/officeDocument/2006/relationships"><sheets>` +
      sheets.map((name, i) => `<sheet name="${xmlText(name)}" sheetId="${i + 1}" r:id="rId${i + 1}"/>`).join('') +
      '</sheets></workbook>',
    'xl/_rels/workbook.xml.rels':
      `${xml}<Relationships xmlns="${ns}/package/2006/relationships">` +
      sheets.map((_, i) => `<Relationship Id="rId${i + 1}" Type="${ns}/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet${i + 1}.xml"/>`).join('') +
      `<Relationship Id="rId${sheets.length + 1}" Type="${ns}/officeDocument/2006/relationships/styles" Target="styles.xml"/></Relationships>`,
    'xl/styles.xml':
      `${xml}<styleSheet xmlns="${ns}/spreadsheetml/2006/main"><fonts count="1"><font><sz val="11"/><name val="Calibri"/></font></fonts>` +
      '<fills count="2"><fill><patternFill patternType="none"/></fill><fill><patternFill patternType="gray125"/></fill></fills>' +
      '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>' +
      '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>' +
      '<cellXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/></cellXfs>' +
      '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles></styleSheet>',
  };
}
