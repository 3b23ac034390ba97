/**
 * The byte layouts of a streamed ZIP archive (PKWARE APPNOTE 6.3.x), kept apart from the writer's
 * stream handling so each record can be read against the specification in one place.
 *
 * Streamed means the sizes and CRC of an entry are unknown when its local header goes out: the
 * header says so (general purpose bit 3) and a data descriptor follows the data; the central
 * directory at the end holds the real values, and is what every reader (yauzl, Python's zipfile,
 * Info-ZIP's unzip) trusts. ZIP64 fields appear only where a value does not fit in 32 (or 16) bits,
 * so ordinary archives stay readable by old tools.
 */

/** The largest value a 32-bit field holds before it must become the ZIP64 marker 0xFFFFFFFF. */
export const ZIP64_LIMIT = 0xffff_ffff;
/** The number of entries from which the end record's 16-bit counts must point to ZIP64. */
const ZIP64_ENTRY_LIMIT = 0xffff;

const LOCAL_HEADER = 0x04034b50;
const DATA_DESCRIPTOR = 0x08074b50;
const CENTRAL_HEADER = 0x02014b50;
const ZIP64_END = 0x06064b50;
const ZIP64_LOCATOR = 0x07064b50;
const END = 0x06054b50;

/** Bit 3: CRC and sizes follow the data (streaming); bit 11: the name is UTF-8. */
const FLAGS = 0x0008 | 0x0800;
const VERSION_NEEDED = 20;
const VERSION_NEEDED_ZIP64 = 45;
/** Made by UNIX (3), specification 4.5: lets unzip apply the external attributes' mode bits. */
const VERSION_MADE_BY = (3 << 8) | VERSION_NEEDED_ZIP64;
/** A regular file, rw-r--r--. */
const EXTERNAL_ATTRIBUTES = (0o100644 << 16) >>> 0;

/** Compression methods: the bytes as they are (level 0), or raw deflate (levels 1 to 9). */
export const METHOD_STORED = 0;
export const METHOD_DEFLATE = 8;

/** What the central directory needs to know of an entry once it has been written. */
export interface WrittenEntry {
  name: Buffer;
  method: number;
  dosTime: number;
  dosDate: number;
  crc32: number;
  size: number;
  compressedSize: number;
  localHeaderOffset: number;
}

/**
 * The entry name as UTF-8 bytes, refused when an unzipping tool could write it outside the target
 * folder or misread it (a "zip slip"): empty, absolute (`/x`, `C:x`), with a backslash (a separator
 * on Windows), a `..` segment, a trailing `/` (a directory, not a file) or longer than the 16-bit
 * length field.
 */
export function entryName(name: string): Buffer {
  const refuse = (why: string) => new Error(`ZIP entry name ${JSON.stringify(name)} refused: ${why}`);
  if (name.length === 0) throw refuse('it is empty');
  if (name.startsWith('/') || /^[a-zA-Z]:/.test(name)) throw refuse('it is absolute');
  if (name.includes('\\')) throw refuse('it contains a backslash');
  if (name.includes('\0')) throw refuse('it contains a NUL character');
  if (name.split('/').includes('..')) throw refuse('it contains a ".." segment');
  if (name.endsWith('/')) throw refuse('it names a directory');
  const bytes = Buffer.from(name, 'utf8');
  if (bytes.length > 0xffff) throw refuse('it is longer than 65535 bytes in UTF-8');
  return bytes;
}

/**
 * MS-DOS date and time of `mtime` in the process's local time zone (as yazl and Info-ZIP's zip
 * write them), to 2 seconds; clamped to the range the format holds, 1980 to 2107.
 */
export function dosDateTime(mtime: Date): { dosDate: number; dosTime: number } {
  let when = mtime;
  if (Number.isNaN(when.getTime()) || when.getFullYear() < 1980) when = new Date(1980, 0, 1, 0, 0, 0);
  else if (when.getFullYear() > 2107) when = new Date(2107, 11, 31, 23, 59, 58);
  const dosDate = ((when.getFullYear() - 1980) << 9) | ((when.getMonth() + 1) << 5) | when.getDate();
  const dosTime = (when.getHours() << 11) | (when.getMinutes() << 5) | (when.getSeconds() >> 1);
  return { dosDate, dosTime };
}

/** The local file header: CRC and sizes left 0, they follow in the data descriptor. */
export function localHeader(entry: Pick<WrittenEntry, 'name' | 'method' | 'dosTime' | 'dosDate'>): Buffer {
  const header = Buffer.alloc(30 + entry.name.length);
  header.writeUInt32LE(LOCAL_HEADER, 0);
  header.writeUInt16LE(VERSION_NEEDED, 4);
  header.writeUInt16LE(FLAGS, 6);
  header.writeUInt16LE(entry.method, 8);
  header.writeUInt16LE(entry.dosTime, 10);
  header.writeUInt16LE(entry.dosDate, 12);
  // 14..25: CRC-32, compressed and uncompressed size, all 0 (bit 3). 26: name length, 28: no extra field.
  header.writeUInt16LE(entry.name.length, 26);
  entry.name.copy(header, 30);
  return header;
}

/**
 * The data descriptor after an entry's data; its sizes are 8 bytes (ZIP64) when either does not
 * fit in 32 bits, as yazl writes them (readers take the sizes from the central directory anyway).
 */
export function dataDescriptor(entry: WrittenEntry, zip64Threshold = ZIP64_LIMIT): Buffer {
  const zip64 = entry.size >= zip64Threshold || entry.compressedSize >= zip64Threshold;
  const descriptor = Buffer.alloc(zip64 ? 24 : 16);
  descriptor.writeUInt32LE(DATA_DESCRIPTOR, 0);
  descriptor.writeUInt32LE(entry.crc32, 4);
  if (zip64) {
    descriptor.writeBigUInt64LE(BigInt(entry.compressedSize), 8);
    descriptor.writeBigUInt64LE(BigInt(entry.size), 16);
  } else {
    descriptor.writeUInt32LE(entry.compressedSize, 8);
    descriptor.writeUInt32LE(entry.size, 12);
  }
  return descriptor;
}

/**
 * One central directory record. A size or offset at or above `zip64Threshold` (0xFFFFFFFF but in
 * tests) reads 0xFFFFFFFF here and its real value goes, in the APPNOTE's order (uncompressed size,
 * compressed size, local header offset), into a ZIP64 extended information extra field (0x0001).
 */
export function centralHeader(entry: WrittenEntry, zip64Threshold = ZIP64_LIMIT): Buffer {
  const large = [entry.size, entry.compressedSize, entry.localHeaderOffset].map((value) => value >= zip64Threshold);
  const extraValues = [entry.size, entry.compressedSize, entry.localHeaderOffset].filter((_, i) => large[i]);
  const extraLength = extraValues.length > 0 ? 4 + 8 * extraValues.length : 0;
  const record = Buffer.alloc(46 + entry.name.length + extraLength);
  const field32 = (value: number, i: number) => (large[i] ? ZIP64_LIMIT : value);
  record.writeUInt32LE(CENTRAL_HEADER, 0);
  record.writeUInt16LE(VERSION_MADE_BY, 4);
  record.writeUInt16LE(extraLength > 0 ? VERSION_NEEDED_ZIP64 : VERSION_NEEDED, 6);
  record.writeUInt16LE(FLAGS, 8);
  record.writeUInt16LE(entry.method, 10);
  record.writeUInt16LE(entry.dosTime, 12);
  record.writeUInt16LE(entry.dosDate, 14);
  record.writeUInt32LE(entry.crc32, 16);
  record.writeUInt32LE(field32(entry.compressedSize, 1), 20);
  record.writeUInt32LE(field32(entry.size, 0), 24);
  record.writeUInt16LE(entry.name.length, 28);
  record.writeUInt16LE(extraLength, 30);
  // 32: comment length, 34: disk number, 36: internal attributes, all 0.
  record.writeUInt32LE(EXTERNAL_ATTRIBUTES, 38);
  record.writeUInt32LE(field32(entry.localHeaderOffset, 2), 42);
  entry.name.copy(record, 46);
  if (extraLength > 0) {
    let at = 46 + entry.name.length;
    record.writeUInt16LE(0x0001, at);
    record.writeUInt16LE(extraLength - 4, at + 2);
    at += 4;
    for (const value of extraValues) {
      record.writeBigUInt64LE(BigInt(value), at);
      at += 8;
    }
  }
  return record;
}

/**
 * The end of the archive: when the entry count, or the central directory's size or offset, does
 * not fit the classic record, a ZIP64 end record and its locator first, and then the classic record
 * with every count, size and offset set to its marker (0xFFFF, 0xFFFFFFFF) so that any reader goes
 * to the ZIP64 record; otherwise the classic record alone.
 */
export function endRecords(entryCount: number, directoryOffset: number, directorySize: number, zip64Threshold = ZIP64_LIMIT): Buffer {
  const zip64 = entryCount >= ZIP64_ENTRY_LIMIT || directoryOffset >= zip64Threshold || directorySize >= zip64Threshold;
  const end = Buffer.alloc(22);
  end.writeUInt32LE(END, 0);
  // 4: this disk, 6: the disk where the central directory starts, both 0.
  end.writeUInt16LE(zip64 ? ZIP64_ENTRY_LIMIT : entryCount, 8);
  end.writeUInt16LE(zip64 ? ZIP64_ENTRY_LIMIT : entryCount, 10);
  end.writeUInt32LE(zip64 ? ZIP64_LIMIT : directorySize, 12);
  end.writeUInt32LE(zip64 ? ZIP64_LIMIT : directoryOffset, 16);
  // 20: comment length 0.
  if (!zip64) return end;

  const zip64End = Buffer.alloc(56);
  zip64End.writeUInt32LE(ZIP64_END, 0);
  zip64End.writeBigUInt64LE(44n, 4); // the size of the rest of this record
  zip64End.writeUInt16LE(VERSION_MADE_BY, 12);
  zip64End.writeUInt16LE(VERSION_NEEDED_ZIP64, 14);
  // 16: this disk, 20: the central directory's disk, both 0.
  zip64End.writeBigUInt64LE(BigInt(entryCount), 24);
  zip64End.writeBigUInt64LE(BigInt(entryCount), 32);
  zip64End.writeBigUInt64LE(BigInt(directorySize), 40);
  zip64End.writeBigUInt64LE(BigInt(directoryOffset), 48);

  const locator = Buffer.alloc(20);
  locator.writeUInt32LE(ZIP64_LOCATOR, 0);
  // 4: the disk with the ZIP64 end record, 0; 8: its offset, right after the central directory.
  locator.writeBigUInt64LE(BigInt(directoryOffset + directorySize), 8);
  locator.writeUInt32LE(1, 16); // one disk in all
  return Buffer.concat([zip64End, locator, end]);
}
