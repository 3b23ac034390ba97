import { describe, expect, it } from 'vitest';
import { allowedMediaType, ALLOWED_MEDIA_TYPES, headMatches } from './attachments-sniff.ts';

const bytes = (...parts: (string | number[])[]) => Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : Buffer.from(p))));

/** A minimal valid start of each allowed type. */
const SAMPLES: Record<string, Buffer> = {
  'application/pdf': bytes('%PDF-1.4\n'),
  'text/plain': bytes('Bonjour\n'),
  'text/csv': bytes('a;b\n1;2\n'),
  'application/msword': bytes([0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1], 'x'),
  'application/vnd.openxmlformats-officedocument.wordprocessingml.document': bytes('PK\x03\x04', '[Content_Types].xml'),
  'application/vnd.ms-excel': bytes([0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1]),
  'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet': bytes('PK\x03\x04'),
  'application/vnd.openxmlformats-officedocument.presentationml.presentation': bytes('PK\x03\x04'),
  'application/vnd.oasis.opendocument.text': bytes('PK\x03\x04', 'mimetype'),
  'application/vnd.oasis.opendocument.spreadsheet': bytes('PK\x03\x04', 'mimetype'),
  'image/png': bytes([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
  'image/jpeg': bytes([0xff, 0xd8, 0xff, 0xe0]),
  'image/gif': bytes('GIF89a'),
  'image/webp': bytes('RIFF', [0x24, 0, 0, 0], 'WEBPVP8 '),
  'video/mp4': bytes([0, 0, 0, 0x18], 'ftypmp42'),
  'video/webm': bytes([0x1a, 0x45, 0xdf, 0xa3]),
  'video/quicktime': bytes([0, 0, 0, 0x14], 'ftypqt  '),
};

describe('attachment types', () => {
  it('[APP-1] every allowed type is recognised by its first bytes, and no other type’s bytes pass for a picture or video', () => {
    expect(Object.keys(SAMPLES).sort()).toEqual([...ALLOWED_MEDIA_TYPES].sort());
    for (const [type, head] of Object.entries(SAMPLES)) expect(headMatches(type, head, true), type).toBe(true);
    for (const type of ['application/pdf', 'image/png', 'image/jpeg', 'image/gif', 'image/webp', 'video/webm']) {
      for (const [other, head] of Object.entries(SAMPLES)) if (other !== type) expect(headMatches(type, head, true), `${other} as ${type}`).toBe(false);
    }
    expect(headMatches('video/quicktime', bytes([0, 0, 0, 8], 'moov'), true)).toBe(true);
    expect(headMatches('application/pdf', bytes(''), true)).toBe(false);
    expect(headMatches('text/html', bytes('<html>'), true)).toBe(false);
  });

  it('[APP-1] text must be UTF-8 without NUL; a character cut by the sniff window is accepted, a cut at the end of the file is not', () => {
    expect(headMatches('text/plain', bytes(''), true)).toBe(true);
    expect(headMatches('text/plain', Buffer.from('Zoé, Montréal, 東京 ✓'), true)).toBe(true);
    expect(headMatches('text/plain', bytes('a\x00b'), true)).toBe(false);
    expect(headMatches('text/csv', bytes('caf\xe9'), true)).toBe(false);
    expect(headMatches('text/plain', bytes([0xff, 0xfe], 'a'), true)).toBe(false);
    const cut = Buffer.from('é').subarray(0, 1);
    expect(headMatches('text/plain', Buffer.concat([Buffer.from('abc'), cut]), false)).toBe(true);
    expect(headMatches('text/plain', Buffer.concat([Buffer.from('abc'), cut]), true)).toBe(false);
  });

  it('[APP-1] only allowed media types are accepted, case-insensitive; text must be declared UTF-8 if a charset is given', () => {
    expect(allowedMediaType('application/pdf')).toBe('application/pdf');
    expect(allowedMediaType('IMAGE/PNG')).toBe('image/png');
    expect(allowedMediaType('text/plain; charset="UTF-8"')).toBe('text/plain');
    expect(allowedMediaType('text/csv;charset=us-ascii')).toBe('text/csv');
    expect(allowedMediaType('text/plain; charset=iso-8859-1')).toBeUndefined();
    for (const type of [undefined, '', 'text/html', 'image/svg+xml', 'application/octet-stream', 'application/x-msdownload', 'application/javascript', 'application/zip', 'image/jpg', 'pdf']) {
      expect(allowedMediaType(type), type).toBeUndefined();
    }
  });
});
