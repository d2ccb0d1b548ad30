/**
 * Encryption of patient data at rest: compact JWE (RFC 7516) with direct key agreement
 * (`dir`) and AES-256-GCM (`A256GCM`, RFC 7518 §5.3), through jose. Each value names its key
 * in the protected header (`kid`), so keys can be rotated: the first key encrypts, every
 * configured key decrypts what it encrypted.
 *
 * Each value is also bound to where it is stored (`ctx` in the protected header, which GCM
 * authenticates): a ciphertext copied into another row, or another tenant's, does not open.
 */
import { base64url, type CompactDecryptResult, CompactEncrypt, compactDecrypt } from 'jose';

/** One data encryption key: its id and 256 bits of key material. */
export interface DataKey {
  kid: string;
  key: Uint8Array;
}

/** Key length of A256GCM, in bytes. */
export const DATA_KEY_BYTES = 32;

/**
 * The development key: serves where synthetic ids are allowed (local runs, tests) and is
 * refused where real national ids are accepted (see config.ts). Public, so it protects nothing.
 */
export const DEV_DATA_KEY: Readonly<{ kid: string; k: string }> = Object.freeze({ kid: 'dev-1', k: 'JK8IiMioCMZPQ1_stm4DGoVt3w3Xf_Lua1gJaAvhUB4' });

/** `{kid, k}` with `k` base64url, as DATA_ENCRYPTION_KEYS holds them. */
export const decodeDataKey = (k: { kid: string; k: string }): DataKey => ({ kid: k.kid, key: base64url.decode(k.k) });

/** A compact JWE of this kind: header, empty encrypted key (`dir`), iv, ciphertext, tag. */
const COMPACT_DIR_JWE = /^[A-Za-z0-9_-]+\.\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+$/;
export const isJwe = (value: unknown): value is string => typeof value === 'string' && COMPACT_DIR_JWE.test(value);

/** Why a stored value did not open. Carries no key material and no content. */
export class DataDecryptionError extends Error {
  override name = 'DataDecryptionError';
}

export class DataCipher {
  private readonly keys: ReadonlyMap<string, Uint8Array>;
  private readonly current: DataKey;

  constructor(keys: readonly DataKey[]) {
    const first = keys[0];
    if (!first) throw new Error('at least one data encryption key is needed');
    for (const k of keys) if (k.key.length !== DATA_KEY_BYTES) throw new Error('a data encryption key is not 256 bits');
    this.current = first;
    this.keys = new Map(keys.map((k) => [k.kid, k.key]));
  }

  /** The key id new values are encrypted under. */
  get kid(): string {
    return this.current.kid;
  }

  /** Encrypts `data` for the place `context` names (e.g. `job/<id>/bundle`). */
  async seal(data: Uint8Array | string, context: string): Promise<string> {
    const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data;
    return new CompactEncrypt(bytes).setProtectedHeader({ alg: 'dir', enc: 'A256GCM', kid: this.current.kid, ctx: context }).encrypt(this.current.key);
  }

  /** Decrypts a value sealed for `context` under any configured key. */
  async open(jwe: string, context: string): Promise<Uint8Array> {
    let result: CompactDecryptResult;
    try {
      result = await compactDecrypt(
        jwe,
        (header) => {
          const key = typeof header.kid === 'string' ? this.keys.get(header.kid) : undefined;
          if (!key) throw new DataDecryptionError('stored data is encrypted under a key id that is not configured in DATA_ENCRYPTION_KEYS');
          return key;
        },
        { keyManagementAlgorithms: ['dir'], contentEncryptionAlgorithms: ['A256GCM'] },
      );
    } catch (e) {
      if (e instanceof DataDecryptionError) throw e;
      throw new DataDecryptionError('stored data does not decrypt (wrong key or altered)');
    }
    if (result.protectedHeader.ctx !== context) throw new DataDecryptionError('stored data belongs to another place');
    return result.plaintext;
  }

  async openText(jwe: string, context: string): Promise<string> {
    return new TextDecoder().decode(await this.open(jwe, context));
  }
}
