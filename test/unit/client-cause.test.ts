/** The cause a failed connection names (src/sync/client.ts networkCause), and that it repeats nothing else. */
import { describe, expect, it } from 'vitest';
import { FhirTargetClient, networkCause } from '../../src/sync/client.ts';

const failed = (cause: unknown) => Object.assign(new TypeError('fetch failed'), { cause });

describe('networkCause', () => {
  it('names the code with the host and port, a DNS failure, a TLS failure in words', () => {
    expect(networkCause(failed({ code: 'ECONNREFUSED', address: '127.0.0.1', port: 8103, message: 'connect ECONNREFUSED 127.0.0.1:8103' }))).toBe(
      'ECONNREFUSED 127.0.0.1:8103',
    );
    expect(networkCause(failed({ code: 'ECONNREFUSED', address: '::1', port: 8103 }))).toBe('ECONNREFUSED [::1]:8103');
    expect(networkCause(failed({ code: 'ENOTFOUND', hostname: 'fhir.example.invalid' }))).toBe('DNS lookup failed for fhir.example.invalid (ENOTFOUND)');
    expect(networkCause(failed({ code: 'CERT_HAS_EXPIRED' }))).toBe("TLS: the server's certificate has expired (CERT_HAS_EXPIRED)");
    expect(networkCause(failed({ errors: [{ code: 'ECONNREFUSED', address: '10.0.0.1', port: 443 }] }))).toBe('ECONNREFUSED 10.0.0.1:443');
  });

  it('gives nothing when there is no code, and never a message or a URL', () => {
    expect(networkCause(new Error('Network connection lost.'))).toBeUndefined();
    expect(networkCause(failed({ message: 'https://user:secret@x/fhir?identifier=02839440092' }))).toBeUndefined();
    expect(networkCause(failed({ code: 'ECONNRESET', address: 'user:secret@host/path?x=1' }))).toBe('ECONNRESET');
  });

  it("is part of the client's message", async () => {
    const client = new FhirTargetClient('http://127.0.0.1:9/fhir', {
      fetch: async () => {
        throw failed({ code: 'ECONNREFUSED', address: '127.0.0.1', port: 9 });
      },
    });
    await expect(client.request('GET', 'metadata')).rejects.toThrow('GET metadata: connection failed (ECONNREFUSED 127.0.0.1:9)');
  });
});
