// Content-Type for served files as Go's http.FileServer picks it: by extension (Go's built-in
// table, then the host's mime.types files), else sniffed from the first 512 bytes
// (the WHATWG-derived rules of Go's http.DetectContentType, the subset that matters for files).
import { readFileSync } from 'node:fs';

/** The files Go's mime package reads on Unix, in its order. */
export const DEFAULT_MIME_TYPES_FILES = ['/etc/mime.types', '/etc/apache2/mime.types', '/etc/apache/mime.types', '/etc/httpd/conf/mime.types'];

// Go's built-in table. It wins over the host's files here (Go lets the files override it) so the
// common types do not depend on which distribution serves them.
const BUILTIN_TYPES: Readonly<Record<string, string>> = {
  '.avif': 'image/avif',
  '.css': 'text/css; charset=utf-8',
  '.gif': 'image/gif',
  '.htm': 'text/html; charset=utf-8',
  '.html': 'text/html; charset=utf-8',
  '.jpeg': 'image/jpeg',
  '.jpg': 'image/jpeg',
  '.js': 'text/javascript; charset=utf-8',
  '.json': 'application/json',
  '.mjs': 'text/javascript; charset=utf-8',
  '.pdf': 'application/pdf',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
  '.wasm': 'application/wasm',
  '.webp': 'image/webp',
  '.xml': 'text/xml; charset=utf-8',
};

export const SNIFF_LENGTH = 512;

export interface ContentTypes {
  /** The type for a file name's extension, or undefined when only sniffing can tell. */
  byExtension(fileName: string): string | undefined;
}

/** Builds the extension table once, at start-up; unreadable files are skipped as Go skips them. */
export function loadContentTypes(mimeTypesFiles: readonly string[] = DEFAULT_MIME_TYPES_FILES): ContentTypes {
  const table = new Map<string, string>();
  for (const file of mimeTypesFiles) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const [extension, type] of parseMimeTypesFile(text)) table.set(extension, type);
  }
  for (const [extension, type] of Object.entries(BUILTIN_TYPES)) table.set(extension, type);
  return {
    byExtension(fileName) {
      const dot = fileName.lastIndexOf('.');
      if (dot < 0) return undefined;
      const extension = fileName.slice(dot);
      return table.get(extension) ?? table.get(extension.toLowerCase());
    },
  };
}

/** Lines of `type ext ext…`; `#` starts a comment; text types get `charset=utf-8` as in Go. */
export function parseMimeTypesFile(text: string): [string, string][] {
  const entries: [string, string][] = [];
  for (const line of text.split('\n')) {
    const fields = line.trim().split(/\s+/);
    if (fields.length <= 1 || fields[0]!.startsWith('#')) continue;
    let type = fields[0]!;
    if (type.startsWith('text/') && !/;\s*charset=/i.test(type)) type = `${type}; charset=utf-8`;
    for (const extension of fields.slice(1)) {
      if (extension.startsWith('#')) break;
      entries.push([`.${extension.toLowerCase()}`, type]);
    }
  }
  return entries;
}

interface Signature {
  matches(data: Buffer, firstNonWhitespace: number): boolean;
  type: string;
}

const WHITESPACE = new Set([0x09, 0x0a, 0x0c, 0x0d, 0x20]);

function exact(prefix: string | number[], type: string): Signature {
  const bytes = typeof prefix === 'string' ? Buffer.from(prefix, 'latin1') : Buffer.from(prefix);
  return { type, matches: (data) => data.length >= bytes.length && data.subarray(0, bytes.length).equals(bytes) };
}

/** An HTML tag at the first non-whitespace byte, any case, followed by a space or `>`. */
function htmlTag(tag: string): Signature {
  const upper = Buffer.from(tag.toUpperCase(), 'latin1');
  return {
    type: 'text/html; charset=utf-8',
    matches(data, start) {
      if (data.length < start + upper.length + 1) return false;
      for (let i = 0; i < upper.length; i++) {
        let byte = data[start + i]!;
        if (byte >= 0x61 && byte <= 0x7a) byte -= 0x20;
        if (byte !== upper[i]) return false;
      }
      const after = data[start + upper.length]!;
      return after === 0x20 || after === 0x3e;
    },
  };
}

function masked(pattern: number[], mask: number[], type: string): Signature {
  return {
    type,
    matches(data) {
      if (data.length < pattern.length) return false;
      return pattern.every((byte, i) => (data[i]! & mask[i]!) === byte);
    },
  };
}

const SIGNATURES: readonly Signature[] = [
  ...['<!DOCTYPE HTML', '<HTML', '<HEAD', '<SCRIPT', '<IFRAME', '<H1', '<DIV', '<FONT', '<TABLE', '<A', '<STYLE', '<TITLE', '<B', '<BODY', '<BR', '<P', '<!--'].map(htmlTag),
  { type: 'text/xml; charset=utf-8', matches: (data, start) => data.subarray(start, start + 5).toString('latin1') === '<?xml' },
  exact('%PDF-', 'application/pdf'),
  exact('%!PS-Adobe-', 'application/postscript'),
  exact([0xfe, 0xff], 'text/plain; charset=utf-16be'),
  exact([0xff, 0xfe], 'text/plain; charset=utf-16le'),
  exact([0xef, 0xbb, 0xbf], 'text/plain; charset=utf-8'),
  exact([0x00, 0x00, 0x01, 0x00], 'image/x-icon'),
  exact([0x00, 0x00, 0x02, 0x00], 'image/x-icon'),
  exact('BM', 'image/bmp'),
  exact('GIF87a', 'image/gif'),
  exact('GIF89a', 'image/gif'),
  masked([0x52, 0x49, 0x46, 0x46, 0, 0, 0, 0, 0x57, 0x45, 0x42, 0x50, 0x56, 0x50], [0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], 'image/webp'),
  exact([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'image/png'),
  exact([0xff, 0xd8, 0xff], 'image/jpeg'),
  exact('OggS\x00', 'application/ogg'),
  exact([0x1f, 0x8b, 0x08], 'application/x-gzip'),
  exact('PK\x03\x04', 'application/zip'),
  exact('Rar!\x1a\x07\x00', 'application/x-rar-compressed'),
  exact('Rar!\x1a\x07\x01\x00', 'application/x-rar-compressed'),
  exact([0x00, 0x61, 0x73, 0x6d], 'application/wasm'),
];

/** Go's http.DetectContentType over the first bytes of a file. */
export function sniffContentType(head: Buffer): string {
  const data = head.subarray(0, SNIFF_LENGTH);
  let firstNonWhitespace = 0;
  while (firstNonWhitespace < data.length && WHITESPACE.has(data[firstNonWhitespace]!)) firstNonWhitespace++;
  for (const signature of SIGNATURES) if (signature.matches(data, firstNonWhitespace)) return signature.type;
  // Go's text rule: no byte that only binary data has.
  for (const byte of data) {
    if (byte <= 0x08 || byte === 0x0b || (byte >= 0x0e && byte <= 0x1a) || (byte >= 0x1c && byte <= 0x1f)) return 'application/octet-stream';
  }
  return 'text/plain; charset=utf-8';
}
