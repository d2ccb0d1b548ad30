/**
 * Cloudflare Worker entry. HTTP goes to the Hono app; the delivery queue's consumer hands
 * each job to the Durable Object of its parent, which runs one attempt at a time for that
 * person, and then acknowledges the message or asks the queue to retry it later.
 */
import { DurableObject } from 'cloudflare:workers';
import { type BridgeConfig, loadConfig } from './config.ts';
import { isOperationOutcomeError } from './fhir/outcome.ts';
import { type InboundAuthenticator, createInboundAuthenticator } from './auth/inbound.ts';
import { createApp } from './http/app.ts';
import { type AttemptResult, attemptJob } from './sync/deliver.ts';
import { D1Store } from './sync/d1-store.ts';
import { createDeliveryService } from './sync/service.ts';
import { clientFactory, retryPolicy } from './sync/targets.ts';

export interface Env {
  DB: D1Database;
  DELIVERY_QUEUE: Queue<DeliveryMessage>;
  PARENT_LANE: DurableObjectNamespace<ParentLane>;
  /** Caller authentication of the API (required; see README "Authentication"). */
  API_AUTH?: string;
  ALLOW_SYNTHETIC_IDS?: string;
  FHIR_TARGETS?: string;
  BRIDGE_PRIVATE_JWKS?: string;
  DELIVERY_MAX_ATTEMPTS?: string;
  RETRY_AFTER_CAP_SECONDS?: string;
  /** Base of the identifier systems; permanent, required in production (README "Identities"). */
  IDENTIFIER_NAMESPACE?: string;
  IDENTITY_SECRET?: string;
  [secret: string]: unknown;
}

export interface DeliveryMessage {
  jobId: string;
  parentKey: string;
}

/**
 * Configuration is read once per isolate and environment; a bad setting fails loudly. The
 * caller authenticator lives beside it, so its token digests and JWKS cache are kept.
 */
let configCache: { env: unknown; config: BridgeConfig; auth: InboundAuthenticator; app?: ReturnType<typeof createApp> } | undefined;
function loaded(env: Env): NonNullable<typeof configCache> {
  if (configCache?.env !== env) {
    const config = loadConfig(env as unknown as Record<string, string | undefined>);
    configCache = { env, config, auth: createInboundAuthenticator(config.apiAuth) };
  }
  return configCache;
}
const config = (env: Env): BridgeConfig => loaded(env).config;

/** Serialises delivery attempts for one parent: one Durable Object per parent key. */
export class ParentLane extends DurableObject<Env> {
  private tail: Promise<unknown> = Promise.resolve();
  private clients?: ReturnType<typeof clientFactory>;

  /** Runs one attempt of `jobId` after every attempt already running here. */
  attempt(jobId: string): Promise<AttemptResult | undefined> {
    const run = this.tail.then(() => {
      const cfg = config(this.env);
      this.clients ??= clientFactory(cfg, (...a) => fetch(...a));
      return attemptJob(jobId, {
        store: new D1Store(this.env.DB),
        clientFor: this.clients,
        now: Date.now,
        random: Math.random,
        newId: () => crypto.randomUUID(),
        policy: retryPolicy(cfg),
      });
    });
    this.tail = run.catch(() => undefined);
    return run;
  }
}

/** The HTTP app, built once per isolate and environment (routes are not rebuilt per request). */
function app(env: Env) {
  const state = loaded(env);
  const { config: cfg, auth } = state;
  const identity = cfg.identity.reveal();
  return (state.app ??= createApp({
    allowSyntheticIds: cfg.allowSyntheticIds,
    identity,
    auth,
    delivery: () =>
      createDeliveryService(
        new D1Store(env.DB),
        {
          async send(messages) {
            for (let i = 0; i < messages.length; i += 100) {
              await env.DELIVERY_QUEUE.sendBatch(messages.slice(i, i + 100).map((body) => ({ body })));
            }
          },
        },
        { allowSyntheticIds: cfg.allowSyntheticIds, identity },
      ),
    jwks: async () => cfg.publicJwks,
  }));
}

export default {
  fetch(request, env, ctx) {
    let handler;
    try {
      handler = app(env);
    } catch (e) {
      // A bad setting is the operator's to fix: say which one (never its value).
      if (isOperationOutcomeError(e)) {
        console.error('configuration error', e.message);
        return new Response(JSON.stringify(e.outcome), { status: 500, headers: { 'content-type': 'application/fhir+json' } });
      }
      throw e;
    }
    return handler.fetch(request, env, ctx);
  },

  async queue(batch, env) {
    for (const message of batch.messages) {
      const { jobId, parentKey } = message.body;
      try {
        const lane = env.PARENT_LANE.get(env.PARENT_LANE.idFromName(parentKey));
        const result = await lane.attempt(jobId);
        if (result && !result.done) message.retry({ delaySeconds: Math.min(43_200, Math.ceil(result.delayMs / 1000)) });
        else message.ack();
      } catch (e) {
        console.error('queue consumer: attempt failed', (e as Error)?.name ?? 'error');
        message.retry({ delaySeconds: 30 });
      }
    }
  },
} satisfies ExportedHandler<Env, DeliveryMessage>;
