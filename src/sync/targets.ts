/** FHIR clients for the configured targets, with their credentials. */
import { type TokenProvider, createTokenProvider } from '../auth/backend-services.ts';
import type { BridgeConfig, TargetConfig } from '../config.ts';
import { CLINIC_TARGET } from './deliver.ts';
import { FhirTargetClient } from './client.ts';
import { DEFAULT_RETRY_POLICY, type RetryPolicy } from './retry.ts';

/** The target configuration for a target name used in jobs (`clinic`, `primary.<orgNumber>`). */
export function targetConfig(config: BridgeConfig, name: string): TargetConfig {
  if (name === CLINIC_TARGET) return config.targets.clinic;
  const org = name.startsWith('primary.') ? name.slice('primary.'.length) : undefined;
  const t = org ? config.targets.primary[org] : undefined;
  if (!t) throw new Error(`no target configured for ${name}`);
  return t;
}

/**
 * Returns a factory of clients. Token providers live as long as the factory, so access
 * tokens are reused across deliveries until shortly before they expire.
 */
export function clientFactory(config: BridgeConfig, fetchImpl: typeof fetch, now: () => number = Date.now): (name: string) => FhirTargetClient {
  const tokens = new Map<string, TokenProvider>();
  return (name) => {
    const target = targetConfig(config, name);
    let provider = tokens.get(name);
    if (!provider) tokens.set(name, (provider = createTokenProvider(target, { fetch: fetchImpl, now })));
    const p = provider;
    return new FhirTargetClient(target.baseUrl, {
      fetch: fetchImpl,
      authorization: () => p.authorization(),
      invalidateAuthorization: () => p.invalidate(),
      timeoutMs: target.timeoutMs,
    });
  };
}

export function retryPolicy(config: BridgeConfig): RetryPolicy {
  return { ...DEFAULT_RETRY_POLICY, maxAttempts: config.deliveryMaxAttempts, retryAfterCapMs: config.retryAfterCapSeconds * 1000 };
}
