/**
 * Which files may be attached (APP-1: documents, pictures, videos), and whether the first bytes of
 * an upload are what its Content-Type says. A declared type outside the allow-list is refused
 * before any byte is read; a file whose first bytes do not match its declared type is refused
 * before it is stored. The check is by magic numbers, not a full parse: it keeps a renamed
 * executable or HTML page from being served back as a "PDF" or "picture".
 *
 * Office Open XML and OpenDocument files are zip containers: the zip signature is enough here.
 * Text (txt, csv) has no magic number: its first bytes must be valid UTF-8 without NUL.
 */

export type AttachmentKind = 'document' | 'picture' | 'video';

interface AllowedType {
  kind: AttachmentKind;
  /** The usual file extension, for documentation. */
  extension: string;
  text?: true;
  /** True when `head` (the first bytes, at most SNIFF_BYTES) starts like this type. */
  matches?: (head: Buffer) => boolean;
}

/** How many first bytes are checked (more than any signature; text is checked over all of them). */
export const SNIFF_BYTES = 8192;

const startsWith = (head: Buffer, ...bytes: number[]) => head.length >= bytes.length && bytes.every((b, i) => head[i] === b);
const ascii = (head: Buffer, offset: number, text: string) => head.length >= offset + text.length && head.toString('latin1', offset, offset + text.length) === text;

const pdf = (head: Buffer) => ascii(head, 0, '%PDF-');
/** OLE2 compound file (legacy .doc, .xls). */
const ole2 = (head: Buffer) => startsWith(head, 0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1);
/** A zip local file header (docx, xlsx, pptx, odt, ods); an empty zip is no document. */
const zip = (head: Buffer) => startsWith(head, 0x50, 0x4b, 0x03, 0x04);
/** ISO base media file: a box size, then `ftyp`. */
const isoMedia = (head: Buffer) => ascii(head, 4, 'ftyp');
/** QuickTime: an ISO `ftyp` box, or one of the classic top-level atoms first. */
const quicktime = (head: Buffer) => ['ftyp', 'moov', 'mdat', 'wide', 'free', 'skip', 'pnot'].some((atom) => ascii(head, 4, atom));

const ALLOWED: Record<string, AllowedType> = {
  'application/pdf': { kind: 'document', extension: 'pdf', matches: pdf },
  'text/plain': { kind: 'document', extension: 'txt', text: true },
  'text/csv': { kind: 'document', extension: 'csv', text: true },
  'application/msword': { kind: 'document', extension: 'doc', matches: ole2 },
  'application/vnd.openxmlformats-officedocument.wordprocessingml.document': { kind: 'document', extension: 'docx', matches: zip },
  'application/vnd.ms-excel': { kind: 'document', extension: 'xls', matches: ole2 },
  'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet': { kind: 'document', extension: 'xlsx', matches: zip },
  'application/vnd.openxmlformats-officedocument.presentationml.presentation': { kind: 'document', extension: 'pptx', matches: zip },
  'application/vnd.oasis.opendocument.text': { kind: 'document', extension: 'odt', matches: zip },
  'application/vnd.oasis.opendocument.spreadsheet': { kind: 'document', extension: 'ods', matches: zip },
  'image/png': { kind: 'picture', extension: 'png', matches: (h) => startsWith(h, 0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a) },
  'image/jpeg': { kind: 'picture', extension: 'jpg', matches: (h) => startsWith(h, 0xff, 0xd8, 0xff) },
  'image/gif': { kind: 'picture', extension: 'gif', matches: (h) => ascii(h, 0, 'GIF87a') || ascii(h, 0, 'GIF89a') },
  'image/webp': { kind: 'picture', extension: 'webp', matches: (h) => ascii(h, 0, 'RIFF') && ascii(h, 8, 'WEBP') },
  'video/mp4': { kind: 'video', extension: 'mp4', matches: isoMedia },
  'video/webm': { kind: 'video', extension: 'webm', matches: (h) => startsWith(h, 0x1a, 0x45, 0xdf, 0xa3) },
  'video/quicktime': { kind: 'video', extension: 'mov', matches: quicktime },
};

/** The accepted media types, in the order above (for OpenAPI and error details). */
export const ALLOWED_MEDIA_TYPES: readonly string[] = Object.keys(ALLOWED);

export function isTextType(mediaType: string): boolean {
  return ALLOWED[mediaType]?.text === true;
}

/**
 * The media type of an upload's Content-Type header if it is allowed, else undefined. Media types
 * are case-insensitive; parameters are ignored, except that text must be UTF-8 (or its subset
 * US-ASCII) when a charset is given.
 */
export function allowedMediaType(header: string | undefined): string | undefined {
  if (!header || header.length > 200) return undefined;
  const [type = '', ...parameters] = header.split(';');
  const mediaType = type.trim().toLowerCase();
  const allowed = ALLOWED[mediaType];
  if (!allowed) return undefined;
  if (allowed.text) {
    for (const parameter of parameters) {
      const [name = '', value = ''] = parameter.split('=');
      if (name.trim().toLowerCase() !== 'charset') continue;
      if (!['utf-8', 'utf8', 'us-ascii'].includes(value.trim().replace(/^"|"$/g, '').toLowerCase())) return undefined;
    }
  }
  return mediaType;
}

/**
 * True when `head` — the first bytes of the file, at most SNIFF_BYTES — is what `mediaType` (an
 * allowed type) says. `complete`: `head` is the whole file (else a multi-byte UTF-8 character may
 * be cut at its end).
 */
export function headMatches(mediaType: string, head: Buffer, complete: boolean): boolean {
  const allowed = ALLOWED[mediaType];
  if (!allowed) return false;
  if (allowed.text) {
    if (head.includes(0)) return false;
    try {
      new TextDecoder('utf-8', { fatal: true }).decode(head, { stream: !complete });
      return true;
    } catch {
      return false;
    }
  }
  return allowed.matches?.(head) ?? false;
}
