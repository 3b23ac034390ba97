import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { columnLetters, CsvRecordEnds, csvLine, parseCsv, sheetName, xlsxRow, xmlText } from './formats.ts';
import { dependencyOrder } from './tenant-tables.ts';

/** Parses `text` delivered in chunks cut at the given positions (the parser must not care). */
async function parse(text: string, cuts: number[] = []): Promise<string[][]> {
  const points = [...new Set(cuts.map((c) => c % (text.length + 1)))].sort((a, b) => a - b);
  const chunks = [0, ...points, text.length].slice(1).map((end, i, all) => text.slice(i === 0 ? 0 : all[i - 1], end));
  const out: string[][] = [];
  for await (const r of parseCsv(chunks)) out.push(r.fields);
  return out;
}

describe('export formats', () => {
  it('[EXP-1] CSV written then parsed gives back every value, whatever the text and wherever the chunks are cut', async () => {
    const cell = fc.string({ unit: fc.constantFrom('a', 'é', '"', ',', '\r', '\n', ' ', '🚀', 'x') });
    await fc.assert(
      fc.asyncProperty(fc.array(fc.array(cell, { minLength: 2, maxLength: 2 }), { minLength: 1, maxLength: 8 }), fc.array(fc.nat(), { maxLength: 5 }), async (rows, cuts) => {
        const text = rows.map((r) => csvLine(r)).join('');
        expect(await parse(text, cuts)).toEqual(rows);
      }),
    );
    expect(csvLine(['a,b', 'say "hi"', '', null, 'x\r\ny'])).toBe('"a,b","say ""hi""","",,"x\r\ny"\r\n');
  });

  it('[EXP-1] record ends of PostgreSQL\'s CSV (LF) become CRLF, line breaks inside quoted fields stay, wherever the chunks are cut', () => {
    const cell = fc.option(fc.string({ unit: fc.constantFrom('a', 'é', '"', ',', '\r', '\n', ' ', '🚀', 'x') }), { nil: null });
    fc.assert(
      fc.property(fc.array(fc.array(cell, { minLength: 1, maxLength: 3 }), { minLength: 1, maxLength: 8 }), fc.array(fc.nat(), { maxLength: 6 }), (rows, cuts) => {
        const crlf = Buffer.from(rows.map((r) => csvLine(r)).join(''));
        const lf = Buffer.from(rows.map((r) => csvLine(r).slice(0, -2) + '\n').join(''));
        const points = [...new Set(cuts.map((c) => c % (lf.length + 1)))].sort((a, b) => a - b);
        const ends = new CsvRecordEnds();
        const out = [0, ...points, lf.length].slice(1).map((end, i, all) => ends.convert(lf.subarray(i === 0 ? 0 : all[i - 1], end)));
        expect(Buffer.concat(out).equals(crlf)).toBe(true);
        expect(ends.records).toBe(rows.length);
        expect(ends.quoted).toBe(false);
      }),
    );
    const ends = new CsvRecordEnds();
    expect(ends.convert(Buffer.from('a,"x\n""y"""\n')).toString()).toBe('a,"x\n""y"""\r\n');
    expect(ends.convert(Buffer.from('"open\n')).toString()).toBe('"open\n');
    expect(ends.quoted).toBe(true);
  });

  it('[EXP-3] the CSV reader reports syntax errors with their line, skips a BOM and blank lines', async () => {
    expect(await parse('\ufeffa,b\n\n1,2\r\n')).toEqual([['a', 'b'], ['1', '2']]);
    await expect(parse('a\n"open')).rejects.toThrow(/line 2/);
    await expect(parse('a\nb"c\n')).rejects.toThrow(/line 2: a quote inside/);
    await expect(parse('"a"b\n')).rejects.toThrow(/after the closing quote/);
  });

  it('[EXP-1] XLSX cells: letters past Z, typed numbers, text never a formula, sheet names within 31 characters', () => {
    expect([0, 25, 26, 701, 702].map(columnLetters)).toEqual(['A', 'Z', 'AA', 'ZZ', 'AAA']);
    expect(xlsxRow(2, ['integer', 'text', 'boolean'], ['42', '=1+1', 'true'])).toBe('<row r="2"><c r="A2"><v>42</v></c><c r="B2" t="inlineStr"><is><t xml:space="preserve">=1+1</t></is></c><c r="C2" t="b"><v>1</v></c></row>');
    expect(sheetName('a'.repeat(40), 2)).toBe(`${'a'.repeat(27)} (2)`);
    expect(xmlText('a\u0001<b>&\r')).toBe('a\ufffd&lt;b&gt;&amp;&#13;');
  });

  it('[EXP-3] tables are imported after the tables they reference', () => {
    const t = (name: string, references: string[]) => ({ name, references, columns: [], primaryKey: [] });
    expect(dependencyOrder([t('payments', ['invoices']), t('invoices', ['companies']), t('companies', [])]).map((x) => x.name)).toEqual(['companies', 'invoices', 'payments']);
    expect(() => dependencyOrder([t('a', ['b']), t('b', ['a'])])).toThrow(/cycle/);
  });
});
