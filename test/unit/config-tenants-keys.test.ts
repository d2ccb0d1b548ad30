/**
 * TENANTS and DATA_ENCRYPTION_KEYS: read and validated with the rest of the configuration,
 * bad settings named and never echoed; the JWE cipher they feed (dir + A256GCM, key ids for
 * rotation, each value bound to its place).
 */
import { base64url, decodeProtectedHeader } from 'jose';
import { describe, expect, it } from 'vitest';
import { tenantOf } from '../../src/auth/tenants.ts';
import { loadConfig } from '../../src/config.ts';
import type { OperationOutcomeError } from '../../src/fhir/outcome.ts';
import { DataCipher, DataDecryptionError, DEV_DATA_KEY, decodeDataKey, isJwe } from '../../src/sync/crypto.ts';

const OPEN = { API_AUTH: '{"type":"none"}', BRIDGE_ENV: 'local' };
const key = (fill: number) => base64url.encode(new Uint8Array(32).fill(fill));

function problems(env: Record<string, string>): { at?: string; text: string }[] {
  try {
    loadConfig(env);
    return [];
  } catch (e) {
    return (e as OperationOutcomeError).outcome.issue.map((i) => ({ at: i.expression?.[0], text: i.details?.text ?? '' }));
  }
}

describe('TENANTS', () => {
  it('makes every caller its own tenant when unset', () => {
    const { tenants } = loadConfig(OPEN);
    expect(tenantOf(tenants, 'journal-north')).toBe('journal-north');
    expect(tenantOf(tenants, 'https://client.example/ehr')).toBe('https://client.example/ehr');
  });

  it('groups callers (static token names, JWT client ids) into one tenant', () => {
    const { tenants } = loadConfig({
      ...OPEN,
      TENANTS: JSON.stringify({ 'clinic-north': ['journal-north', 'c7f0-client-id'], 'clinic-west': ['journal-west'] }),
    });
    expect(tenantOf(tenants, 'journal-north')).toBe('clinic-north');
    expect(tenantOf(tenants, 'c7f0-client-id')).toBe('clinic-north');
    expect(tenantOf(tenants, 'journal-west')).toBe('clinic-west');
    expect(tenantOf(tenants, 'someone-else')).toBe('someone-else');
  });

  it("gives no tenant to a caller that could land in someone else's: an ungrouped caller named like a tenant, `local`, a JWT naming no client", () => {
    const { tenants } = loadConfig({ ...OPEN, TENANTS: JSON.stringify({ 'clinic-north': ['journal-north'] }) });
    expect(tenantOf(tenants, 'clinic-north')).toBeUndefined();
    expect(tenantOf(tenants, 'local')).toBeUndefined();
    expect(tenantOf(tenants, 'jwt:unnamed')).toBeUndefined();
    // The open API is `local`.
    expect(tenantOf(tenants, 'local', true)).toBe('local');
  });

  it('names every bad grouping without echoing names', () => {
    const secretish = 'member-name-that-must-not-appear';
    const cases: [unknown, RegExp][] = [
      ['not json', /JSON object/],
      [['a'], /JSON object/],
      [{ 'bad tenant name!': [secretish] }, /tenant 1 has a name/],
      [{ north: [] }, /tenant 1 must list its callers/],
      [{ north: [secretish, 'has space x'] }, /tenant 1, caller 2 is not a caller name/],
      [{ north: [secretish], west: [secretish] }, /tenant 2, caller 1 is listed in more than one tenant/],
      [{ north: ['west'], west: ['journal-west'] }, /has the name of another tenant/],
    ];
    for (const [value, message] of cases) {
      const text = typeof value === 'string' ? value : JSON.stringify(value);
      const p = problems({ ...OPEN, TENANTS: text });
      expect(p.map((x) => x.at)).toEqual(p.map(() => 'TENANTS'));
      expect(p.map((x) => x.text).join('\n')).toMatch(message);
      expect(JSON.stringify(p)).not.toContain(secretish);
    }
  });

  it('refuses a static token named like a tenant it is not listed in', () => {
    const env = {
      API_AUTH: '{"type":"bearer","tokensSecret":"API_TOKENS"}',
      API_TOKENS: JSON.stringify({ 'clinic-north': 'token-0123456789abcdefghijklmnopqrstuv' }),
      TENANTS: JSON.stringify({ 'clinic-north': ['journal-north'] }),
    };
    const p = problems(env);
    expect(p.map((x) => x.at)).toEqual(['TENANTS']);
    expect(p[0]?.text).toMatch(/token 1 .* has the name of a tenant/);
    expect(JSON.stringify(p)).not.toContain('token-0123456789');
  });
});

describe('DATA_ENCRYPTION_KEYS', () => {
  const production = {
    API_AUTH: '{"type":"bearer","tokensSecret":"API_TOKENS"}',
    API_TOKENS: 'test-api-token-0123456789abcdefghij',
    ALLOW_SYNTHETIC_IDS: 'false',
    FHIR_TARGETS: '{"clinic":{"baseUrl":"https://fhir.clinic.example/r4","auth":{"type":"none"}}}',
    IDENTIFIER_NAMESPACE: 'https://fhir.clinic.example/sid',
    IDENTITY_SECRET: 'test-identity-secret-0123456789abcdef',
  };

  it('serves the development key where synthetic ids are allowed', () => {
    const keys = loadConfig(OPEN).dataKeys.reveal();
    expect(keys.map((k) => k.kid)).toEqual([DEV_DATA_KEY.kid]);
    expect(JSON.stringify(loadConfig(OPEN))).not.toContain(DEV_DATA_KEY.k);
  });

  it('is required where real national ids are accepted, and the development key is refused there', () => {
    expect(problems(production).map((p) => p.at)).toEqual(['DATA_ENCRYPTION_KEYS']);
    const dev = problems({ ...production, DATA_ENCRYPTION_KEYS: JSON.stringify([DEV_DATA_KEY]) });
    expect(dev.map((p) => p.at)).toEqual(['DATA_ENCRYPTION_KEYS.0.k']);
    expect(dev[0]?.text).toMatch(/development key/);
    expect(JSON.stringify(dev)).not.toContain(DEV_DATA_KEY.k);
    const ok = loadConfig({
      ...production,
      DATA_ENCRYPTION_KEYS: JSON.stringify([
        { kid: '2026-11', k: key(1) },
        { kid: '2026-05', k: key(2) },
      ]),
    });
    expect(ok.dataKeys.reveal().map((k) => k.kid)).toEqual(['2026-11', '2026-05']);
    expect(JSON.stringify(ok)).not.toContain(key(1));
  });

  it('names a bad key by position and says what is wrong, never the key', () => {
    const short = base64url.encode(new Uint8Array(16).fill(7));
    const cases: [unknown, string, RegExp][] = [
      ['nope', 'DATA_ENCRYPTION_KEYS', /non-empty JSON array/],
      [[], 'DATA_ENCRYPTION_KEYS', /non-empty JSON array/],
      [[{ kid: 'a', k: short }], 'DATA_ENCRYPTION_KEYS.0.k', /256 bits.*this key has 128 bits/],
      [
        [
          { kid: 'a', k: key(3) },
          { kid: 'a', k: key(4) },
        ],
        'DATA_ENCRYPTION_KEYS.1.kid',
        /unique/,
      ],
      [[{ kid: 'a b', k: key(3) }], 'DATA_ENCRYPTION_KEYS.0.kid', /letters, digits/],
      [[{ kid: 'a', k: `${key(3)}!` }], 'DATA_ENCRYPTION_KEYS.0.k', /base64url/],
      [[{ kid: 'a', k: key(3), alg: 'A256GCM' }], 'DATA_ENCRYPTION_KEYS.0.alg', /not a known setting/],
    ];
    for (const [value, at, message] of cases) {
      const p = problems({ ...OPEN, DATA_ENCRYPTION_KEYS: typeof value === 'string' ? value : JSON.stringify(value) });
      expect(p.map((x) => x.at)).toEqual([at]);
      expect(p[0]?.text).toMatch(message);
      for (const secret of [short, key(3), key(4)]) expect(JSON.stringify(p)).not.toContain(secret);
    }
  });
});

describe('DataCipher (compact JWE, dir + A256GCM)', () => {
  const a = decodeDataKey({ kid: 'key-a', k: key(10) });
  const b = decodeDataKey({ kid: 'key-b', k: key(11) });

  it('encrypts under the first key, naming it in the protected header, and decrypts', async () => {
    const jwe = await new DataCipher([a]).seal('{"family":"Nordmann"}', 'job/1/targets');
    expect(isJwe(jwe)).toBe(true);
    expect(jwe).not.toContain('Nordmann');
    expect(decodeProtectedHeader(jwe)).toMatchObject({ alg: 'dir', enc: 'A256GCM', kid: 'key-a' });
    expect(await new DataCipher([a]).openText(jwe, 'job/1/targets')).toBe('{"family":"Nordmann"}');
  });

  it('decrypts values under a previous key after rotation; a key no longer configured does not', async () => {
    const old = await new DataCipher([a]).seal('before rotation', 'ctx');
    const rotated = new DataCipher([b, a]);
    expect(await rotated.openText(old, 'ctx')).toBe('before rotation');
    const fresh = await rotated.seal('after rotation', 'ctx');
    expect(decodeProtectedHeader(fresh).kid).toBe('key-b');
    await expect(new DataCipher([b]).open(old, 'ctx')).rejects.toThrow(DataDecryptionError);
  });

  it('refuses a value moved to another place, or altered', async () => {
    const c = new DataCipher([a]);
    const jwe = await c.seal('x', 'job/1/bundle');
    await expect(c.open(jwe, 'job/2/bundle')).rejects.toThrow(/another place/);
    const parts = jwe.split('.');
    parts[3] = parts[3]!.startsWith('A') ? `B${parts[3]!.slice(1)}` : `A${parts[3]!.slice(1)}`;
    await expect(c.open(parts.join('.'), 'job/1/bundle')).rejects.toThrow(DataDecryptionError);
  });
});
