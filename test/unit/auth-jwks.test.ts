/** The public JWKS the bridge publishes: public members only, by allow-list. */

import type { JWK } from 'jose';
import { exportJWK, generateKeyPair, importJWK } from 'jose';
import { describe, expect, it } from 'vitest';
import { publicJwks } from '../../src/auth/jwks.ts';

const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];

async function privateJwk(alg: 'RS384' | 'ES384', kid: string): Promise<JWK> {
  const { privateKey } = await generateKeyPair(alg, { extractable: true });
  return { ...(await exportJWK(privateKey)), kid };
}

describe('publicJwks', () => {
  it('keeps only public members of RSA and EC keys and marks them for verification', async () => {
    const rsa = { ...(await privateJwk('RS384', 'rs')), alg: 'RS384', ext: true, key_ops: ['sign'], x5c: ['MIIB'] };
    const ec = await privateJwk('ES384', 'es');
    const { keys } = publicJwks({ keys: [rsa, ec] });

    expect(keys).toEqual([
      { kty: 'RSA', kid: 'rs', alg: 'RS384', n: rsa.n, e: rsa.e, use: 'sig', key_ops: ['verify'] },
      { kty: 'EC', kid: 'es', alg: 'ES384', crv: 'P-384', x: ec.x, y: ec.y, use: 'sig', key_ops: ['verify'] },
    ]);
    const text = JSON.stringify(keys);
    for (const m of PRIVATE_MEMBERS) {
      for (const k of keys) expect(k).not.toHaveProperty(m);
    }
    for (const v of [rsa.d, rsa.p, rsa.q, rsa.dp, rsa.dq, rsa.qi, ec.d]) expect(text).not.toContain(v);
  });

  it('gives keys that import as public verification keys', async () => {
    const { keys } = publicJwks({ keys: [await privateJwk('RS384', 'rs'), await privateJwk('ES384', 'es')] });
    for (const k of keys) {
      const key = (await importJWK(k as JWK, k.kid === 'rs' ? 'RS384' : 'ES384')) as CryptoKey;
      expect(key.type).toBe('public');
      expect(key.usages).toEqual(['verify']);
    }
  });

  it('leaves out symmetric and incomplete keys', () => {
    const { keys } = publicJwks({
      keys: [
        { kty: 'oct', kid: 'h', k: 'c2VjcmV0' },
        { kty: 'RSA', kid: 'broken', d: 'x' },
        { kty: 'OKP', crv: 'Ed25519', x: 'a', d: 'b' },
      ],
    });
    expect(keys).toEqual([]);
  });
});
