/** FHIR clients for the configured targets, with their credentials. */
import { createTokenProvider, type TokenProvider, type TokenProviderDeps } from '../auth/backend-services.ts';
import type { BridgeConfig } from '../config.ts';
import { FhirTargetClient } from './client.ts';
import { DEFAULT_RETRY_POLICY, type RetryPolicy } from './retry.ts';
import type { TargetConfig } from './target-config.ts';
import { CLINIC_TARGET } from './types.ts';

/** The target configuration for a target name used in jobs (`clinic`, `primary.<orgNumber>`). */
export function targetConfig(config: BridgeConfig, name: string): TargetConfig {
  if (name === CLINIC_TARGET) return config.targets.clinic;
  const org = name.startsWith('primary.') ? name.slice('primary.'.length) : undefined;
  const t = org ? config.targets.primary[org] : undefined;
  if (!t) throw new Error(`no target configured for ${name}`);
  return t;
}

/**
 * Token providers of this process or isolate, per fetch implementation and then keyed by
 * target name and everything its credentials depend on (so a changed configuration gets a
 * new provider, never another target's token). Every delivery in the isolate that passes the
 * same fetch shares them: a SMART access token is requested once per target and reused until
 * shortly before it expires, however many parents' deliveries (Durable Objects) run here.
 */
const providersByFetch = new WeakMap<typeof fetch, Map<string, TokenProvider>>();
/** A bound on the cache: configurations change only with deployments. */
const MAX_PROVIDERS = 256;

/** The cache key: the target's name and configuration, secrets included (held only in memory). */
function providerKey(target: TargetConfig): string {
  const a = target.auth;
  const auth = a.type === 'bearer' ? { ...a, token: a.token.reveal() } : a.type === 'smart-backend' ? { ...a, privateKey: a.privateKey.reveal() } : a;
  return JSON.stringify([target.name, target.baseUrl, target.timeoutMs, auth]);
}

/** The shared token provider for `target` (see {@link providersByFetch}). */
export function tokenProviderFor(target: TargetConfig, deps: TokenProviderDeps): TokenProvider {
  let providers = providersByFetch.get(deps.fetch);
  if (!providers) providersByFetch.set(deps.fetch, (providers = new Map()));
  const key = providerKey(target);
  let provider = providers.get(key);
  if (!provider) {
    if (providers.size >= MAX_PROVIDERS) providers.clear();
    providers.set(key, (provider = createTokenProvider(target, deps)));
  }
  return provider;
}

/**
 * Returns a factory of clients. Their token providers are shared per target across the
 * process or isolate ({@link tokenProviderFor}), so access tokens are reused across
 * deliveries until shortly before they expire.
 */
export function clientFactory(config: BridgeConfig, fetchImpl: typeof fetch, now: () => number = Date.now): (name: string) => FhirTargetClient {
  return (name) => {
    const target = targetConfig(config, name);
    const p = tokenProviderFor(target, { fetch: fetchImpl, now });
    return new FhirTargetClient(target.baseUrl, {
      fetch: fetchImpl,
      authorization: () => p.authorization(),
      invalidateAuthorization: () => p.invalidate(),
      timeoutMs: target.timeoutMs,
    });
  };
}

/** The FHIR base URL configured for a primary treatment organisation number, if any (the sharing gate's "a target is configured"). */
export function primaryEndpoint(config: BridgeConfig): (orgNumber: string) => string | undefined {
  return (orgNumber) => (Object.hasOwn(config.targets.primary, orgNumber) ? config.targets.primary[orgNumber]?.baseUrl : undefined);
}

export function retryPolicy(config: BridgeConfig): RetryPolicy {
  return { ...DEFAULT_RETRY_POLICY, maxAttempts: config.deliveryMaxAttempts, retryAfterCapMs: config.retryAfterCapSeconds * 1000 };
}
