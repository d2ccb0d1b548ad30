/**
 * The strict body parser: what JSON.parse would accept but the bridge refuses (duplicate,
 * prototype keys, deep nesting, invalid UTF-8), where it says the problem is, and that it
 * never quotes what it was sent. On everything else it must agree with JSON.parse.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decodeUtf8,
  invalidUtf8Offset,
  JsonBodyError,
  MAX_JSON_DEPTH,
  nothingToRefuse,
  parseJsonBody,
  parseStrictJson,
  parseStrictJsonSlowly,
} from '../../src/http/json.ts';

const refusal = (text: string): JsonBodyError => {
  try {
    parseStrictJson(text);
  } catch (e) {
    expect(e).toBeInstanceOf(JsonBodyError);
    return e as JsonBodyError;
  }
  throw new Error('expected the parser to refuse');
};

describe('parseStrictJson agrees with JSON.parse on valid input', () => {
  it('round-trips any JSON value (fast-check)', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 8 }), (v) => {
        const text = JSON.stringify(v);
        // fast-check may generate keys such as "__proto__": those are refused on purpose.
        const hasForbidden = /"(__proto__|constructor|prototype)":/.test(text);
        if (hasForbidden) expect(() => parseStrictJson(text)).toThrow(JsonBodyError);
        else expect(parseStrictJson(text)).toStrictEqual(JSON.parse(text));
      }),
      { numRuns: 500 },
    );
  });

  it('round-trips pretty-printed JSON and unicode strings (fast-check)', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 4 }), fc.string({ unit: 'grapheme' }), (v, s) => {
        const text = JSON.stringify({ v, s }, null, 2);
        if (/"(__proto__|constructor|prototype)":/.test(text)) return;
        expect(parseStrictJson(text)).toStrictEqual(JSON.parse(text));
      }),
      { numRuns: 300 },
    );
  });

  it('reads every escape, numbers in every form, and literals', () => {
    const text = String.raw`{"s":"a\"b\\c\/d\b\f\n\r\t\u00e6\ud83d\ude00","n":[0,-0,1.5,-2e3,1E+2,3e-1,12345678901234567890],"l":[true,false,null],"e":{},"a":[]}`;
    expect(parseStrictJson(text)).toStrictEqual(JSON.parse(text));
    expect(Object.is(parseStrictJson('-0') as number, -0)).toBe(true);
  });

  it('refuses what JSON.parse refuses (fast-check on mutated text)', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 4 }), fc.nat(), fc.constantFrom('{', '}', '[', ']', ',', ':', '"', '\\', 'x', ' '), (v, at, ch) => {
        const base = JSON.stringify(v);
        const k = at % (base.length + 1);
        const text = base.slice(0, k) + ch + base.slice(k);
        let expected: unknown;
        try {
          expected = JSON.parse(text);
        } catch {
          expect(() => parseStrictJson(text)).toThrow(JsonBodyError);
          return;
        }
        if (/"(__proto__|constructor|prototype)":/.test(text)) return;
        // A mutation that stays valid JSON may introduce a duplicate key: then refused.
        try {
          expect(parseStrictJson(text)).toStrictEqual(expected);
        } catch (e) {
          expect((e as JsonBodyError).kind).toBe('duplicate-key');
        }
      }),
      { numRuns: 1000 },
    );
  });

  it.each([
    '',
    ' ',
    '{',
    '[1,]',
    '{"a":1,}',
    '{"a" 1}',
    '{a:1}',
    "'x'",
    '01',
    '1.',
    '.5',
    '+1',
    '-',
    'tru',
    'nul',
    '"\\x"',
    '"\\u12"',
    '"a\nb"',
    '[1] [2]',
    'NaN',
    '{"a":1}}',
  ])('refuses %j as not JSON', (text) => {
    const e = refusal(text);
    expect(e.kind).toBe('syntax');
    expect(e.message).toMatch(/is not valid JSON: .* at line \d+, column \d+ \(offset \d+\)/);
  });
});

describe('parseStrictJson refuses what JSON.parse lets through', () => {
  it('refuses a duplicate key, naming its pointer and line, at any depth', () => {
    const e = refusal('{\n  "parent": {\n    "nationalId": "1",\n    "family": "x",\n    "nationalId": "2"\n  }\n}');
    expect(e.kind).toBe('duplicate-key');
    expect(e.pointer).toBe('/parent/nationalId');
    expect(e.line).toBe(5);
    expect(e.column).toBe(5);
    expect(e.message).toContain('/parent/nationalId');
    expect(refusal('[{"a":1},{"b":[{"c":1,"c":1}]}]').pointer).toBe('/1/b/0/c');
    // Escapes that spell the same key are the same key.
    expect(refusal('{"ab":1,"a\\u0062":2}').kind).toBe('duplicate-key');
  });

  it.each(['__proto__', 'constructor', 'prototype'])('refuses the key %s, at any depth', (key) => {
    const top = refusal(`{"${key}":{"polluted":true}}`);
    expect(top.kind).toBe('forbidden-key');
    expect(top.message).toContain(`"${key}"`);
    const nested = refusal(`{"a":[{"b":{"${key}":1}}]}`);
    expect(nested.pointer).toBe(`/a/0/b/${key}`);
    // Written with an escape it is the same key.
    expect(refusal(`{"${key.replace('_', '\\u005f').replace('c', '\\u0063').replace('p', '\\u0070')}":1}`).kind).toBe('forbidden-key');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('keeps other keys named like Object.prototype members as plain data', () => {
    const v = parseStrictJson('{"toString":"x","hasOwnProperty":1,"valueOf":null}') as Record<string, unknown>;
    expect(Object.getPrototypeOf(v)).toBe(Object.prototype);
    expect(v.toString).toBe('x');
    expect(Object.keys(v)).toEqual(['toString', 'hasOwnProperty', 'valueOf']);
  });

  it(`refuses nesting deeper than ${MAX_JSON_DEPTH}, and survives 10,000 and 1,000,000 levels`, () => {
    const ok = '['.repeat(MAX_JSON_DEPTH) + ']'.repeat(MAX_JSON_DEPTH);
    expect(parseStrictJson(ok)).toStrictEqual(JSON.parse(ok));
    for (const depth of [MAX_JSON_DEPTH + 1, 10_000, 1_000_000]) {
      const e = refusal('['.repeat(depth) + ']'.repeat(depth));
      expect(e.kind).toBe('depth');
      expect(e.offset).toBe(MAX_JSON_DEPTH);
    }
    const objects = '{"a":'.repeat(10_000) + '1' + '}'.repeat(10_000);
    const e = refusal(objects);
    expect(e.kind).toBe('depth');
    expect(e.pointer).toBe('/a'.repeat(MAX_JSON_DEPTH));
    expect(parseStrictJson('[[1]]', { maxDepth: 2 })).toEqual([[1]]);
    expect(() => parseStrictJson('[[[1]]]', { maxDepth: 2 })).toThrow(/deeper than 2 levels/);
  });
});

describe('messages never quote the input', () => {
  const secrets = ['Nordmann', '+47 400 00 000', '01818012345'];
  const bodies = [
    '{"family": "Nordmann", "phone": "+47 400 00 000", "nationalId": "01818012345" oops}',
    '{"family": "Nordmann", "phone": "+47 400 00 000", "nationalId": 01818012345}',
    '{"family": "Nordmann", "phone": "+47 400 00 000", "nationalId": "01818012345",}',
    '{"family": "Nordmann", "phone": "+47 400 00 000", "nationalId": "01818012345"',
    '{"family": "Nordmann\u0001", "phone": "+47 400 00 000", "nationalId": "01818012345"}',
    '{"family": "Nordmann", "01818012345": 1, "01818012345": 2}',
    '{"Nordmann": {"+47 400 00 000": {"01818012345": [' + '['.repeat(100) + ']}}}',
  ];
  it.each(bodies)('%#: names the position only', (text) => {
    const e = refusal(text);
    for (const s of secrets) expect(e.message).not.toContain(s);
    for (const s of secrets) expect(e.pointer ?? '').not.toContain(s);
    expect(e.message).toMatch(/line 1, column \d+/);
  });
});

describe('UTF-8', () => {
  const bytes = (...b: number[]) => new Uint8Array(b);
  it('decodes valid UTF-8 and drops a byte order mark', () => {
    const text = '{"family":"Ærø 😀"}';
    expect(parseJsonBody(new TextEncoder().encode(text))).toEqual({ family: 'Ærø 😀' });
    expect(parseJsonBody(new Uint8Array([0xef, 0xbb, 0xbf, ...new TextEncoder().encode('[1]')]))).toEqual([1]);
  });

  it.each([
    ['a lone continuation byte', [0x7b, 0x80, 0x7d], 1],
    ['an overlong encoding', [0x22, 0xc0, 0xaf, 0x22], 1],
    ['a UTF-16 surrogate encoded in UTF-8', [0x22, 0x61, 0xed, 0xa0, 0x80, 0x22], 2],
    ['a truncated sequence', [0x22, 0xe2, 0x82], 1],
    ['a code point above U+10FFFF', [0x22, 0xf4, 0x90, 0x80, 0x80, 0x22], 1],
    ['a byte that never occurs', [0x22, 0xff, 0x22], 1],
  ])('refuses %s, naming the byte offset', (_name, b, offset) => {
    expect(invalidUtf8Offset(bytes(...b))).toBe(offset);
    try {
      decodeUtf8(bytes(...b));
      throw new Error('expected a refusal');
    } catch (e) {
      expect((e as JsonBodyError).kind).toBe('encoding');
      expect((e as JsonBodyError).message).toBe(`request body is not valid UTF-8: invalid byte sequence at byte offset ${offset}`);
    }
  });

  it('finds no invalid offset in any valid UTF-8 (fast-check)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme' }), (s) => {
        expect(invalidUtf8Offset(new TextEncoder().encode(s))).toBe(-1);
      }),
    );
  });
});

describe("the shortcut (JSON.parse, then a check of what it built) gives the full parser's verdicts", () => {
  // Keys that collide once escapes are undone, forbidden keys written with escapes, keys containing quotes, backslashes and colons.
  const keyText = fc.constantFrom(
    '"a"',
    '"\\u0061"',
    '"b"',
    '"a\\"b"',
    '"a\\\\"',
    '"\\\\"',
    '"__proto__"',
    '"__pr\\u006fto__"',
    '"constructor"',
    '"x:y"',
    '"::"',
    '"\\u003a"',
    '"{"',
    '"["',
  );
  const ws = fc.constantFrom('', ' ', '\n  ', '\t');
  const { value } = fc.letrec<{ value: string; object: string; array: string; scalar: string }>((tie) => ({
    value: fc.oneof({ depthSize: 'small' }, tie('scalar'), tie('object'), tie('array')),
    scalar: fc.oneof(fc.constantFrom('1', '-0.5e3', 'true', 'null', '"a"', '"x\\"y:"', '":"', '"\\\\"'), keyText),
    object: fc
      .array(fc.tuple(ws, keyText, ws, tie('value')), { maxLength: 4 })
      .map((pairs) => `{${pairs.map(([w1, k, w2, v]) => `${w1}${k}${w2}:${w2}${v}`).join(',')}}`),
    array: fc.array(tie('value'), { maxLength: 4 }).map((vs) => `[${vs.join(',')}]`),
  }));
  const verdict = (f: () => unknown): string => {
    try {
      return JSON.stringify(f());
    } catch (e) {
      return (e as JsonBodyError).message;
    }
  };

  it('on JSON with colliding, escaped and forbidden keys at any depth (fast-check)', () => {
    fc.assert(
      fc.property(value, fc.integer({ min: 1, max: 6 }), (text, maxDepth) => {
        expect(verdict(() => parseStrictJson(text, { maxDepth }))).toBe(verdict(() => parseStrictJsonSlowly(text, { maxDepth })));
        // On valid JSON without an escaped colon the check alone must be exact.
        if (text.includes('\\u003')) return;
        const slowOk = verdict(() => parseStrictJsonSlowly(text, { maxDepth })).startsWith('request body') === false;
        expect(nothingToRefuse(text, JSON.parse(text), maxDepth)).toBe(slowOk);
      }),
      { numRuns: 2000 },
    );
  });

  it('on mutated text, valid or not (fast-check)', () => {
    fc.assert(
      fc.property(value, fc.nat(), fc.constantFrom('{', '}', '[', ']', ',', ':', '"', '\\', 'x', ' ', '\u0001'), (base, at, ch) => {
        const k = at % (base.length + 1);
        const text = base.slice(0, k) + ch + base.slice(k);
        expect(verdict(() => parseStrictJson(text))).toBe(verdict(() => parseStrictJsonSlowly(text, {})));
      }),
      { numRuns: 2000 },
    );
  });

  it('refuses a key repeated in an escaped spelling, and a forbidden key spelled with escapes', () => {
    expect(nothingToRefuse('{"a":1,"\\u0061":2}', { a: 2 }, 64)).toBe(false);
    expect(() => parseStrictJson('{"a":1,"\\u0061":2}')).toThrow(/duplicate key/);
    expect(() => parseStrictJson('{"__pr\\u006fto__":{}}')).toThrow(/not allowed/);
    const nested = '{"a":{"a":1},"b":[{"a":1},{"a":2}]}';
    expect(nothingToRefuse(nested, JSON.parse(nested), 64)).toBe(true);
  });

  it('is not fooled by a duplicate key whose loss an escaped colon would make up for in the count', () => {
    // Three literal colons: two keys and one colon in a string; JSON.parse keeps two keys and two colons of strings.
    expect(() => parseStrictJson('{"a":"x:y","a":1,"z":"\\u003a:"}')).toThrow(/duplicate key/);
    expect(() => parseStrictJson('{"a":1,"a":2,"z":"\\u003a"}')).toThrow(/duplicate key/);
  });
});
