/**
 * The one JSON parser for request bodies. Stricter than `JSON.parse` where ambiguity or
 * cost could be used against the bridge, and careful never to quote what it was sent:
 *
 * - the body must be UTF-8 (RFC 8259 §8.1); invalid bytes are refused, never replaced;
 * - a key may appear once per object (RFC 8259 §4 leaves duplicates to the parser: with
 *   `JSON.parse` the last one wins, so two readers could see two different episodes);
 * - nesting is limited (default 64 levels), and the parser is iterative, so no depth of
 *   input can overflow the stack;
 * - `__proto__`, `constructor` and `prototype` are refused as keys: nothing the bridge
 *   reads has such an element, and code downstream must not meet them;
 * - errors name the position (line, column, offset) and the JSON pointer (RFC 6901) of the
 *   value being read, never the text around it: bodies carry names and national ids.
 *
 * No npm package found does all of this: secure-json-parse and bourne cover prototype keys
 * only, and the duplicate-key checkers neither bound depth nor keep the input out of errors.
 */

/** Deepest nesting of arrays and objects a body may have. */
export const MAX_JSON_DEPTH = 64;

const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

export type JsonErrorKind = 'encoding' | 'syntax' | 'duplicate-key' | 'depth' | 'forbidden-key';

/** Where and why a body was refused; `message` names the position, never the content. */
export class JsonBodyError extends Error {
  readonly kind: JsonErrorKind;
  /** Offset into the text in UTF-16 code units (for `encoding`: bytes). */
  readonly offset: number;
  readonly line?: number;
  readonly column?: number;
  /** JSON pointer of the value being read, where one is known (RFC 6901). */
  readonly pointer?: string;

  constructor(kind: JsonErrorKind, message: string, at: { offset: number; line?: number; column?: number; pointer?: string }) {
    super(message);
    this.name = 'JsonBodyError';
    this.kind = kind;
    this.offset = at.offset;
    if (at.line !== undefined) this.line = at.line;
    if (at.column !== undefined) this.column = at.column;
    if (at.pointer !== undefined) this.pointer = at.pointer;
  }
}

const decoder = new TextDecoder('utf-8', { fatal: true });

/**
 * Byte offset of the first invalid UTF-8 sequence (RFC 3629 §4: no overlongs, no surrogates,
 * nothing above U+10FFFF), or -1. Only called once the fatal decoder has refused the bytes,
 * to say where.
 */
export function invalidUtf8Offset(bytes: Uint8Array): number {
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i] as number;
    if (b < 0x80) {
      i++;
      continue;
    }
    let need: number;
    let lo = 0x80;
    let hi = 0xbf;
    if (b >= 0xc2 && b <= 0xdf) need = 1;
    else if (b >= 0xe0 && b <= 0xef) {
      need = 2;
      if (b === 0xe0) lo = 0xa0;
      if (b === 0xed) hi = 0x9f;
    } else if (b >= 0xf0 && b <= 0xf4) {
      need = 3;
      if (b === 0xf0) lo = 0x90;
      if (b === 0xf4) hi = 0x8f;
    } else return i;
    for (let k = 1; k <= need; k++) {
      const c = bytes[i + k];
      if (c === undefined) return i;
      if (k === 1 ? c < lo || c > hi : c < 0x80 || c > 0xbf) return i;
    }
    i += need + 1;
  }
  return -1;
}

/** Decodes UTF-8 bytes, refusing invalid sequences (a leading byte order mark is dropped). */
export function decodeUtf8(bytes: Uint8Array, what = 'request body'): string {
  try {
    return decoder.decode(bytes);
  } catch {
    const offset = invalidUtf8Offset(bytes);
    throw new JsonBodyError('encoding', `${what} is not valid UTF-8: invalid byte sequence at byte offset ${offset}`, { offset });
  }
}

export interface StrictJsonOptions {
  /** Deepest nesting allowed; default {@link MAX_JSON_DEPTH}. */
  maxDepth?: number;
  /** Names the text in messages, e.g. `line 3 of the import`; default `request body`. */
  what?: string;
}

/** A container being filled, with where the parser is inside it (for pointers). */
type Frame = { kind: 'object'; value: Record<string, unknown>; key: string | undefined } | { kind: 'array'; value: unknown[] };

const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;

/**
 * A pointer segment as shown in messages: array indexes, and keys shaped like the elements of
 * the episode format and FHIR (lowerCamelCase, `_` for primitive extensions, short numbers
 * for answers). Any other key could be content written as a key (a surname, a national id)
 * and is shown as `*`.
 */
function segment(s: string | number): string {
  if (typeof s === 'number') return String(s);
  return /^(?:[a-z_][A-Za-z0-9_]{0,63}|[0-9]{1,6})$/.test(s) ? s : '*';
}

/**
 * Parses JSON text strictly (see the module comment). Throws {@link JsonBodyError}; on valid
 * input without duplicate or forbidden keys the result equals `JSON.parse(text)`.
 *
 * For speed, the engine's native `JSON.parse` builds the value first, and
 * {@link nothingToRefuse} checks it against the text. Whenever either refuses, or the text
 * escapes a colon (which the check counts), {@link parseStrictJsonSlowly} parses the text again
 * and gives the refusal: so which problem is reported, and where, does not depend on the
 * shortcut, and `JSON.parse`'s own messages, which quote the input, are never shown.
 */
export function parseStrictJson(text: string, options: StrictJsonOptions = {}): unknown {
  if (text.indexOf('\\u003') < 0) {
    let value: unknown;
    let parsed = true;
    try {
      value = JSON.parse(text);
    } catch {
      parsed = false;
    }
    if (parsed && nothingToRefuse(text, value, options.maxDepth ?? MAX_JSON_DEPTH)) return value;
  }
  return parseStrictJsonSlowly(text, options);
}

/** Occurrences of `:` in a string. */
function colons(s: string): number {
  let count = 0;
  for (let i = s.indexOf(':'); i >= 0; i = s.indexOf(':', i + 1)) count++;
  return count;
}

/**
 * Whether `value`, which `JSON.parse(text)` returned, has nothing the strict parser refuses: no
 * forbidden key, no nesting deeper than `maxDepth`, and no key that a later duplicate replaced.
 * Duplicates are found by counting. Outside strings, valid JSON has one `:` per key, so the
 * text's colons number its keys plus the colons inside its strings. A repeated key loses its
 * earlier occurrence (and any keys and colons of the value it had) from `value`, so the keys
 * and string colons of `value` add up to fewer. The count holds only where every colon of a
 * string is written as itself: the caller sends text with `\u003a` to the full parser.
 */
export function nothingToRefuse(text: string, value: unknown, maxDepth: number): boolean {
  let count = 0;
  // Iterative, so that no depth of input can overflow the stack.
  const stack: object[] = [];
  const depths: number[] = [];
  if (typeof value === 'string') count += colons(value);
  else if (typeof value === 'object' && value !== null) {
    stack.push(value);
    depths.push(0);
  }
  while (stack.length > 0) {
    const v = stack.pop() as object;
    const depth = depths.pop() as number;
    if (depth >= maxDepth) return false;
    if (Array.isArray(v)) {
      for (const x of v) {
        if (typeof x === 'string') count += colons(x);
        else if (typeof x === 'object' && x !== null) {
          stack.push(x);
          depths.push(depth + 1);
        }
      }
      continue;
    }
    const keys = Object.keys(v);
    count += keys.length;
    for (const k of keys) {
      if (FORBIDDEN_KEYS.has(k)) return false;
      count += colons(k);
      const x = (v as Record<string, unknown>)[k];
      if (typeof x === 'string') count += colons(x);
      else if (typeof x === 'object' && x !== null) {
        stack.push(x);
        depths.push(depth + 1);
      }
    }
  }
  return count === colons(text);
}

/** The full strict parser: builds the value itself, and says where and why it refuses (exported for the tests that hold {@link parseStrictJson}'s shortcut to it). */
export function parseStrictJsonSlowly(text: string, options: StrictJsonOptions): unknown {
  const maxDepth = options.maxDepth ?? MAX_JSON_DEPTH;
  const what = options.what ?? 'request body';
  const n = text.length;
  const stack: Frame[] = [];
  let i = 0;

  const pointer = (extra?: string | number): string => {
    const parts: (string | number)[] = [];
    for (const f of stack) {
      if (f.kind === 'array') parts.push(f.value.length);
      else if (f.key !== undefined) parts.push(f.key);
    }
    if (extra !== undefined) parts.push(extra);
    return parts.map((p) => '/' + segment(p)).join('');
  };
  const fail = (kind: JsonErrorKind, problem: string, at: number, ptr: string = pointer()): never => {
    let line = 1;
    let lineStart = 0;
    for (let k = 0; k < at && k < n; k++) {
      if (text.charCodeAt(k) === 10) {
        line++;
        lineStart = k + 1;
      }
    }
    const column = at - lineStart + 1;
    const where = `line ${line}, column ${column} (offset ${at})${ptr ? `, JSON pointer ${ptr}` : ''}`;
    const message = kind === 'syntax' ? `${what} is not valid JSON: ${problem} at ${where}` : `${what} is refused: ${problem} at ${where}`;
    throw new JsonBodyError(kind, message, { offset: at, line, column, pointer: ptr });
  };

  const skipWs = () => {
    while (i < n) {
      const c = text.charCodeAt(i);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) i++;
      else break;
    }
  };

  const readString = (): string => {
    // text[i] is the opening quote.
    const start = ++i;
    let out = '';
    let chunk = start;
    while (true) {
      if (i >= n) return fail('syntax', 'unterminated string', start - 1);
      const c = text.charCodeAt(i);
      if (c === 0x22) {
        out += text.slice(chunk, i);
        i++;
        return out;
      }
      if (c < 0x20) return fail('syntax', 'unescaped control character in a string', i);
      if (c !== 0x5c) {
        i++;
        continue;
      }
      out += text.slice(chunk, i);
      const e = text.charCodeAt(i + 1);
      switch (e) {
        case 0x22:
          out += '"';
          break;
        case 0x5c:
          out += '\\';
          break;
        case 0x2f:
          out += '/';
          break;
        case 0x62:
          out += '\b';
          break;
        case 0x66:
          out += '\f';
          break;
        case 0x6e:
          out += '\n';
          break;
        case 0x72:
          out += '\r';
          break;
        case 0x74:
          out += '\t';
          break;
        case 0x75: {
          const hex = text.slice(i + 2, i + 6);
          if (!/^[0-9A-Fa-f]{4}$/.test(hex)) return fail('syntax', 'invalid \\u escape in a string', i);
          out += String.fromCharCode(parseInt(hex, 16));
          i += 4;
          break;
        }
        default:
          return fail('syntax', 'invalid escape in a string', i);
      }
      i += 2;
      chunk = i;
    }
  };

  /** Reads a scalar, or opens a container (returns `open`). */
  const OPEN = Symbol('open');
  const readValue = (): unknown => {
    skipWs();
    if (i >= n) return fail('syntax', 'unexpected end of input', i);
    const c = text.charCodeAt(i);
    if (c === 0x7b || c === 0x5b) {
      if (stack.length >= maxDepth) return fail('depth', `nesting is deeper than ${maxDepth} levels`, i);
      stack.push(c === 0x7b ? { kind: 'object', value: {}, key: undefined } : { kind: 'array', value: [] });
      i++;
      return OPEN;
    }
    if (c === 0x22) return readString();
    if (c === 0x74 && text.startsWith('true', i)) return ((i += 4), true);
    if (c === 0x66 && text.startsWith('false', i)) return ((i += 5), false);
    if (c === 0x6e && text.startsWith('null', i)) return ((i += 4), null);
    NUMBER.lastIndex = i;
    const m = NUMBER.exec(text);
    if (m?.[0].length) {
      i += m[0].length;
      return Number(m[0]);
    }
    return fail('syntax', 'unexpected character', i);
  };

  /** After `{` or `,` in an object: reads `"key":`, checks it, leaves the key on the frame. */
  const readKey = (f: Extract<Frame, { kind: 'object' }>): void => {
    f.key = undefined;
    skipWs();
    if (text.charCodeAt(i) !== 0x22) fail('syntax', 'expected a string key', i);
    const at = i;
    const key = readString();
    if (FORBIDDEN_KEYS.has(key)) fail('forbidden-key', `key "${key}" is not allowed`, at, pointer(key));
    if (Object.hasOwn(f.value, key)) fail('duplicate-key', 'duplicate key (a key may appear only once in an object)', at, pointer(key));
    f.key = key;
    skipWs();
    if (text.charCodeAt(i) !== 0x3a) fail('syntax', "expected ':' after a key", i);
    i++;
  };

  let value = readValue();
  // Iterative descent: `value` is the value just completed (or OPEN for a new container).
  while (true) {
    if (value === OPEN) {
      const f = stack[stack.length - 1] as Frame;
      skipWs();
      const close = f.kind === 'object' ? 0x7d : 0x5d;
      if (text.charCodeAt(i) === close) {
        i++;
        stack.pop();
        value = f.value;
      } else {
        if (f.kind === 'object') readKey(f);
        value = readValue();
        continue;
      }
    }
    const parent = stack[stack.length - 1];
    if (!parent) break;
    if (parent.kind === 'array') parent.value.push(value);
    else {
      // Plain assignment is safe: `__proto__`, the one setter on Object.prototype, never gets here.
      parent.value[parent.key as string] = value;
    }
    skipWs();
    const c = text.charCodeAt(i);
    if (c === 0x2c) {
      i++;
      if (parent.kind === 'object') readKey(parent);
      value = readValue();
      continue;
    }
    if (c === (parent.kind === 'object' ? 0x7d : 0x5d)) {
      i++;
      stack.pop();
      value = parent.value;
      continue;
    }
    if (parent.kind === 'object') parent.key = undefined;
    fail('syntax', i >= n ? 'unexpected end of input' : parent.kind === 'object' ? "expected ',' or '}'" : "expected ',' or ']'", i);
  }
  skipWs();
  if (i < n) fail('syntax', 'unexpected text after the JSON value', i, '');
  return value;
}

/** Decodes and parses a body in one go: {@link decodeUtf8} then {@link parseStrictJson}. */
export function parseJsonBody(bytes: Uint8Array, options: StrictJsonOptions = {}): unknown {
  return parseStrictJson(decodeUtf8(bytes, options.what), options);
}
