/**
 * FHIR R4's rule for strings (https://hl7.org/fhir/R4/datatypes.html#string): no characters
 * below U+0020 other than tab, carriage return and line feed. Text must also be Unicode
 * (https://hl7.org/fhir/R4/json.html: JSON is UTF-8), so a lone UTF-16 surrogate — which
 * JSON can spell as `\ud800` — is refused too. Such characters would be mapped into
 * resources that the bridge's own validator and FHIR servers then refuse, or would reach
 * a clinician's screen as invisible control sequences.
 */

const hex = (c: number) => `U+${c.toString(16).toUpperCase().padStart(4, '0')}`;

/** Why a string breaks the rule (naming the code point and its position, never the text), or undefined. */
export function stringProblem(s: string): string | undefined {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x20 && (c < 0xd800 || c > 0xdfff)) continue;
    if (c < 0x20) {
      if (c === 0x09 || c === 0x0a || c === 0x0d) continue;
      return `contains the control character ${hex(c)} at character ${i + 1}, which FHIR strings do not allow`;
    }
    const next = s.charCodeAt(i + 1);
    if (c <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
      i++;
      continue;
    }
    return `contains a lone surrogate (${hex(c)}) at character ${i + 1}: not Unicode text`;
  }
  return undefined;
}

export interface StringFinding {
  /** Where: a FHIRPath-like expression (`Patient.name[0].family`) or a JSON pointer. */
  path: string;
  problem: string;
  /** Whether the problem is in a key (element name) rather than a value. */
  inKey: boolean;
}

/**
 * Every string (values and keys) in a parsed JSON value that breaks the rule, at most `max`.
 * Iterative: no depth of input can overflow the stack. `style` chooses how paths are written.
 */
export function findBadStrings(
  root: unknown,
  options: {
    base: string;
    style: 'fhirpath' | 'pointer';
    max?: number;
    /** Further check of keys: a message when a key is refused. */
    key?: (key: string) => string | undefined;
  },
): StringFinding[] {
  const max = options.max ?? 100;
  const out: StringFinding[] = [];
  const child = (path: string, k: string | number): string =>
    options.style === 'pointer' ? `${path}/${String(k).replaceAll('~', '~0').replaceAll('/', '~1')}` : typeof k === 'number' ? `${path}[${k}]` : `${path}.${k}`;
  const stack: [unknown, string][] = [[root, options.base]];
  while (stack.length && out.length < max) {
    const [v, path] = stack.pop() as [unknown, string];
    if (typeof v === 'string') {
      const problem = stringProblem(v);
      if (problem) out.push({ path, problem, inKey: false });
    } else if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--) stack.push([v[i], child(path, i)]);
    } else if (v && typeof v === 'object') {
      const children: [unknown, string][] = [];
      for (const k of Object.keys(v)) {
        const own = stringProblem(k);
        // A key that breaks the rule is not repeated in the path: the path names its object.
        if (own) out.push({ path, problem: `an element name ${own}`, inKey: true });
        else {
          const refused = options.key?.(k);
          if (refused) out.push({ path: child(path, k), problem: refused, inKey: true });
          else children.push([(v as Record<string, unknown>)[k], child(path, k)]);
        }
      }
      for (let i = children.length - 1; i >= 0; i--) stack.push(children[i] as [unknown, string]);
    }
  }
  return out.slice(0, max);
}
