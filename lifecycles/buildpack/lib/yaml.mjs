// The YAML the buildpack contract exchanges, read without a YAML library (the lifecycle ships
// with no node_modules): bin/release output, Procfiles, staging_info.yml and the deps
// directory's config.yml / launch.yml. That YAML is small and regular, so this reads the subset
// it uses:
//
//   * block mappings and block sequences by indentation, `- key: value` items included;
//   * plain, 'single-quoted' and "double-quoted" scalars, `|` and `>` block scalars, plain
//     scalars continued on more-indented lines, comments, `---` / `...` markers;
//   * single-line flow collections (`[]`, `{}`, `[a, "b"]`, `{a: b}`).
//
// Every scalar is a string, except an empty value, `~` and `null`, which are null: the readers
// want strings (process commands, names, versions), as Go's decoding into string fields gave them.
// Anchors, aliases, tags and multi-document streams are not read; they never appear in this YAML.

export class YamlError extends Error {
  /** @param {string} message @param {number} [lineNumber] 1-based */
  constructor(message, lineNumber) {
    super(lineNumber === undefined ? message : `line ${lineNumber}: ${message}`);
  }
}

/**
 * @typedef {{ number: number, raw: string, indent: number, text: string, blank: boolean }} Line
 *   `text` is the line after its indentation; `blank` lines (empty or comment-only) carry no
 *   structure but belong to block scalars.
 */

/** Parses a YAML document; an empty document is null. */
export function parseYaml(source) {
  const lines = splitLines(String(source));
  const parser = new Parser(lines);
  const first = parser.peek();
  if (first === undefined) return null;
  const value = parser.parseDocument(first);
  const extra = parser.peek();
  if (extra !== undefined) throw new YamlError('unexpected content after the document', extra.number);
  return value;
}

function splitLines(source) {
  const rawLines = source.replace(/^\uFEFF/, '').split(/\r?\n/);
  /** @type {Line[]} */
  const lines = [];
  let started = false;
  for (let index = 0; index < rawLines.length; index += 1) {
    const raw = rawLines[index];
    // One document: `---` may open it, `...` ends it.
    if (/^---(\s|$)/.test(raw) && !started) {
      const rest = raw.slice(3).trim();
      if (rest !== '' && !rest.startsWith('#')) {
        lines.push(makeLine(index + 1, rest));
        started = true;
      }
      continue;
    }
    if (/^\.\.\.(\s|$)/.test(raw)) break;
    if (/^---(\s|$)/.test(raw)) throw new YamlError('only one YAML document is supported', index + 1);
    const line = makeLine(index + 1, raw);
    if (!line.blank) started = true;
    lines.push(line);
  }
  return lines;
}

function makeLine(number, raw) {
  const indent = raw.length - raw.trimStart().length;
  const text = raw.slice(indent).trimEnd();
  return { number, raw, indent, text, blank: text === '' || text.startsWith('#') };
}

class Parser {
  /** @param {Line[]} lines */
  constructor(lines) {
    this.lines = lines;
    this.index = 0;
  }

  /** The next line that carries structure. */
  peek() {
    while (this.index < this.lines.length && this.lines[this.index].blank) this.index += 1;
    const line = this.lines[this.index];
    // Tabs are content inside block scalars (read from the raw lines), never indentation.
    if (line !== undefined && line.raw.slice(0, line.raw.length - line.raw.trimStart().length).includes('\t')) {
      throw new YamlError('tabs cannot be used for indentation', line.number);
    }
    return line;
  }

  parseDocument(first) {
    if (isSequenceItem(first.text)) return this.parseSequence(first.indent);
    if (findKeySeparator(first.text) !== undefined) return this.parseMapping(first.indent);
    // A scalar (or flow collection) as the whole document.
    this.index += 1;
    return this.parseValueAfterIndicator(first.text, -1, first.number, false);
  }

  /** A block node whose first line is the next line, indented exactly `indent`. */
  parseBlock(indent) {
    const line = this.peek();
    if (line === undefined) return null;
    if (isSequenceItem(line.text)) return this.parseSequence(indent);
    if (findKeySeparator(line.text) === undefined) {
      throw new YamlError(`could not find expected ':' in ${JSON.stringify(line.text)}`, line.number);
    }
    return this.parseMapping(indent);
  }

  parseMapping(indent) {
    const mapping = Object.create(null);
    for (let line = this.peek(); line !== undefined && line.indent === indent; line = this.peek()) {
      if (isSequenceItem(line.text)) throw new YamlError('a sequence item where a mapping key was expected', line.number);
      const separator = findKeySeparator(line.text);
      if (separator === undefined) throw new YamlError(`could not find expected ':' in ${JSON.stringify(line.text)}`, line.number);
      const key = readKey(line.text.slice(0, separator.keyEnd), line.number);
      this.index += 1;
      mapping[key] = this.parseValueAfterIndicator(line.text.slice(separator.valueStart), indent, line.number, true);
    }
    const after = this.peek();
    if (after !== undefined && after.indent > indent) throw new YamlError('bad indentation of a mapping entry', after.number);
    return mapping;
  }

  parseSequence(indent) {
    const items = [];
    for (let line = this.peek(); line !== undefined && line.indent === indent && isSequenceItem(line.text); line = this.peek()) {
      const rest = line.text.slice(1);
      const content = rest.trimStart();
      if (content !== '' && !content.startsWith('#') && (isSequenceItem(content) || findKeySeparator(content) !== undefined)) {
        // `- key: value` (or `- - x`) opens a nested node whose column is where its content
        // starts: rewrite this line as that node's first line and read the node from it.
        const column = indent + 1 + (rest.length - content.length);
        this.lines[this.index] = { ...line, indent: column, text: content };
        items.push(this.parseBlock(column));
        continue;
      }
      this.index += 1;
      items.push(this.parseValueAfterIndicator(content, indent, line.number, false));
    }
    const after = this.peek();
    if (after !== undefined && after.indent > indent) throw new YamlError('bad indentation of a sequence entry', after.number);
    return items;
  }

  /**
   * The value after `key:` or `-`: inline on the same line, a block scalar, or a nested block
   * on the lines below. A mapping's value may be a sequence at the mapping's own indentation.
   */
  parseValueAfterIndicator(text, parentIndent, lineNumber, inMapping) {
    const content = stripComment(text).trim();
    if (content === '') {
      const next = this.peek();
      if (next !== undefined && next.indent > parentIndent) return this.parseBlock(next.indent);
      if (inMapping && next !== undefined && next.indent === parentIndent && isSequenceItem(next.text)) return this.parseSequence(parentIndent);
      return null;
    }
    if (content[0] === '|' || content[0] === '>') return this.parseBlockScalar(content, parentIndent, lineNumber);
    return this.parseInlineValue(text.trim(), parentIndent, lineNumber);
  }

  /** A scalar or flow collection starting on this line; plain scalars may continue below. */
  parseInlineValue(text, parentIndent, lineNumber) {
    const first = text[0];
    if (first === '"' || first === "'") {
      const { value, end } = readQuoted(text, 0, lineNumber);
      const trailing = text.slice(end).trim();
      if (trailing !== '' && !trailing.startsWith('#')) throw new YamlError(`unexpected ${JSON.stringify(trailing)} after a quoted scalar`, lineNumber);
      return value;
    }
    if (first === '[' || first === '{') {
      const reader = new FlowReader(stripComment(text).trim(), lineNumber);
      const value = reader.readValue();
      reader.expectEnd();
      return value;
    }
    // A plain scalar: more-indented lines below continue it, folded with single spaces.
    const parts = [stripComment(text).trim()];
    for (let line = this.peek(); line !== undefined && line.indent > parentIndent; line = this.peek()) {
      if (findKeySeparator(line.text) !== undefined) throw new YamlError('mapping values are not allowed here', line.number);
      parts.push(stripComment(line.text).trim());
      this.index += 1;
    }
    return plainScalar(parts.join(' '));
  }

  parseBlockScalar(header, parentIndent, lineNumber) {
    const match = /^([|>])([+-]?)([1-9]?)([+-]?)$/.exec(header);
    if (!match) throw new YamlError(`invalid block scalar header ${JSON.stringify(header)}`, lineNumber);
    const folded = match[1] === '>';
    const chomping = match[2] || match[4];
    const explicitIndent = match[3] === '' ? undefined : parentIndent + Number(match[3]);

    /** @type {string[]} */
    const body = [];
    let contentIndent = explicitIndent;
    while (this.index < this.lines.length) {
      const line = this.lines[this.index];
      const isEmpty = line.raw.trim() === '';
      if (!isEmpty) {
        if (contentIndent === undefined) contentIndent = line.indent;
        if (line.indent < contentIndent || line.indent <= parentIndent) break;
      }
      body.push(isEmpty ? '' : line.raw.slice(contentIndent));
      this.index += 1;
    }
    // Trailing empty lines belong to the chomping, not to the content.
    let trailingEmpty = 0;
    while (body.length > 0 && body[body.length - 1] === '') {
      body.pop();
      trailingEmpty += 1;
    }
    let text = folded ? foldLines(body) : body.join('\n');
    if (body.length === 0) return chomping === '+' ? '\n'.repeat(trailingEmpty) : '';
    if (chomping === '-') return text;
    text += '\n';
    if (chomping === '+') text += '\n'.repeat(trailingEmpty);
    return text;
  }
}

/**
 * `>` folding: a line break between two text lines becomes a space, each empty line becomes a
 * line break, and breaks next to more-indented lines are kept.
 */
function foldLines(lines) {
  let out = lines[0];
  for (let index = 1; index < lines.length; index += 1) {
    const line = lines[index];
    const previous = lines[index - 1];
    if (line === '') out += '\n';
    else if (previous === '') out += line;
    else out += (/^\s/.test(line) || /^\s/.test(previous) ? '\n' : ' ') + line;
  }
  return out;
}

function isSequenceItem(text) {
  return text === '-' || text.startsWith('- ') || text.startsWith('-\t');
}

/**
 * Where a mapping line's key ends and its value starts: the first `:` followed by a space or
 * the end of the line, outside a quoted key. Undefined when the line is no `key: value`.
 */
function findKeySeparator(text) {
  if (text[0] === '"' || text[0] === "'") {
    let end;
    try {
      end = readQuoted(text, 0, 0).end;
    } catch {
      return undefined;
    }
    const after = text.slice(end);
    const match = /^\s*:(\s|$)/.exec(after);
    if (!match) return undefined;
    return { keyEnd: end, valueStart: end + after.indexOf(':') + 1 };
  }
  if (text.startsWith('#') || text.startsWith('[') || text.startsWith('{')) return undefined;
  for (let index = 0; index < text.length; index += 1) {
    if (text[index] === '#' && index > 0 && /\s/.test(text[index - 1])) return undefined;
    if (text[index] === ':' && (index + 1 === text.length || /\s/.test(text[index + 1]))) {
      if (index === 0) return undefined;
      return { keyEnd: index, valueStart: index + 1 };
    }
  }
  return undefined;
}

function readKey(text, lineNumber) {
  const trimmed = text.trim();
  if (trimmed[0] === '"' || trimmed[0] === "'") return readQuoted(trimmed, 0, lineNumber).value;
  if (trimmed === '') throw new YamlError('empty mapping key', lineNumber);
  return trimmed;
}

/** A plain scalar's comment starts at a `#` preceded by whitespace. */
function stripComment(text) {
  if (text.startsWith('#')) return '';
  const match = /\s#/.exec(text);
  return match ? text.slice(0, match.index) : text;
}

function plainScalar(text) {
  if (text === '' || text === '~' || text === 'null' || text === 'Null' || text === 'NULL') return null;
  return text;
}

const DOUBLE_QUOTE_ESCAPES = {
  0: '\0', a: '\x07', b: '\b', t: '\t', '\t': '\t', n: '\n', v: '\v', f: '\f', r: '\r', e: '\x1b',
  ' ': ' ', '"': '"', '/': '/', '\\': '\\', N: '\u0085', _: '\u00a0', L: '\u2028', P: '\u2029',
};

/** A single- or double-quoted scalar starting at `start`, on one line. */
function readQuoted(text, start, lineNumber) {
  const quote = text[start];
  let value = '';
  let index = start + 1;
  while (index < text.length) {
    const char = text[index];
    if (quote === "'") {
      if (char === "'") {
        if (text[index + 1] === "'") {
          value += "'";
          index += 2;
          continue;
        }
        return { value, end: index + 1 };
      }
      value += char;
      index += 1;
      continue;
    }
    if (char === '"') return { value, end: index + 1 };
    if (char !== '\\') {
      value += char;
      index += 1;
      continue;
    }
    const escape = text[index + 1];
    if (escape === undefined) break;
    const hexLength = escape === 'x' ? 2 : escape === 'u' ? 4 : escape === 'U' ? 8 : 0;
    if (hexLength > 0) {
      const hex = text.slice(index + 2, index + 2 + hexLength);
      if (!new RegExp(`^[0-9a-fA-F]{${hexLength}}$`).test(hex)) throw new YamlError(`invalid escape \\${escape}${hex}`, lineNumber);
      value += String.fromCodePoint(parseInt(hex, 16));
      index += 2 + hexLength;
      continue;
    }
    if (!Object.hasOwn(DOUBLE_QUOTE_ESCAPES, escape)) throw new YamlError(`invalid escape \\${escape}`, lineNumber);
    value += DOUBLE_QUOTE_ESCAPES[/** @type {keyof typeof DOUBLE_QUOTE_ESCAPES} */ (escape)];
    index += 2;
  }
  throw new YamlError('unterminated quoted scalar', lineNumber);
}

/** Single-line flow collections: `[a, "b", {c: d}]`, `{a: b, c: [d]}`. */
class FlowReader {
  constructor(text, lineNumber) {
    this.text = text;
    this.index = 0;
    this.lineNumber = lineNumber;
  }

  skipSpaces() {
    while (this.index < this.text.length && /\s/.test(this.text[this.index])) this.index += 1;
  }

  fail(message) {
    return new YamlError(`${message} in flow collection ${JSON.stringify(this.text)}`, this.lineNumber);
  }

  readValue() {
    this.skipSpaces();
    const char = this.text[this.index];
    if (char === '[') return this.readSequence();
    if (char === '{') return this.readMapping();
    if (char === '"' || char === "'") {
      const { value, end } = readQuoted(this.text, this.index, this.lineNumber);
      this.index = end;
      return value;
    }
    return this.readPlain();
  }

  readPlain() {
    const start = this.index;
    while (this.index < this.text.length) {
      const char = this.text[this.index];
      if (char === ',' || char === ']' || char === '}') break;
      if (char === ':' && (this.index + 1 === this.text.length || /[\s,\]}]/.test(this.text[this.index + 1]))) break;
      this.index += 1;
    }
    return plainScalar(this.text.slice(start, this.index).trim());
  }

  readSequence() {
    this.index += 1;
    const items = [];
    for (;;) {
      this.skipSpaces();
      if (this.text[this.index] === ']') {
        this.index += 1;
        return items;
      }
      items.push(this.readValue());
      this.skipSpaces();
      const char = this.text[this.index];
      if (char === ',') this.index += 1;
      else if (char !== ']') throw this.fail("expected ',' or ']'");
    }
  }

  readMapping() {
    this.index += 1;
    const mapping = Object.create(null);
    for (;;) {
      this.skipSpaces();
      if (this.text[this.index] === '}') {
        this.index += 1;
        return mapping;
      }
      const key = this.readValue();
      if (typeof key !== 'string') throw this.fail('expected a scalar key');
      this.skipSpaces();
      let value = null;
      if (this.text[this.index] === ':') {
        this.index += 1;
        this.skipSpaces();
        const next = this.text[this.index];
        if (next !== ',' && next !== '}') value = this.readValue();
      }
      mapping[key] = value;
      this.skipSpaces();
      const char = this.text[this.index];
      if (char === ',') this.index += 1;
      else if (char !== '}') throw this.fail("expected ',' or '}'");
    }
  }

  expectEnd() {
    this.skipSpaces();
    if (this.index < this.text.length) throw this.fail('unexpected trailing content');
  }
}

/** A mapping as the reader sees it: a plain object (null-prototype), never an array or scalar. */
export function isMapping(value) {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * A `name: command` mapping (Procfile, default_process_types) as a string map. Null (an empty
 * document or value) is an empty map; anything else that is not a mapping of scalars is an error.
 */
export function readStringMap(value, what) {
  /** @type {Record<string, string>} */
  const map = Object.create(null);
  if (value === null || value === undefined) return map;
  if (!isMapping(value)) throw new YamlError(`${what}: expected a mapping`);
  for (const [key, item] of Object.entries(value)) {
    if (item !== null && typeof item !== 'string') throw new YamlError(`${what}.${key}: expected a string`);
    map[key] = item ?? '';
  }
  return map;
}
