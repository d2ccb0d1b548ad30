/**
 * Cloudflare Worker entry. HTTP goes to the Hono app; the delivery queue's consumer hands
 * each job to the Durable Object of its parent, which runs one attempt at a time for that
 * person, and then acknowledges the message or asks the queue to retry it later. Messages
 * the queue gives up on land in its dead-letter queue, whose consumer marks their jobs
 * dead. A Cron Trigger re-queues jobs whose message was lost, purges old Bundles and stored
 * episodes, and reads open coordination requests back from the primary treatment servers.
 */
import { DurableObject } from 'cloudflare:workers';
import { createInboundAuthenticator, type InboundAuthenticator } from './auth/inbound.ts';
import { withTenants } from './auth/tenants.ts';
import { type BridgeConfig, loadConfig } from './config.ts';
import { FHIR_JSON } from './fhir/json.ts';
import { isOperationOutcomeError, issue, OperationOutcomeError, outcome } from './fhir/outcome.ts';
import { createApp } from './http/app.ts';
import { smartDepsFrom } from './http/smart.ts';
import { errorKind, log } from './log.ts';
import { refreshCoordination } from './sync/coordination.ts';
import { DataCipher } from './sync/crypto.ts';
import { D1Store } from './sync/d1-store.ts';
import { DEAD_LETTER_QUEUE, DEAD_LETTERED } from './sync/dead-letter.ts';
import { type AttemptResult, attemptJob } from './sync/deliver.ts';
import { createDeliveryService, type DeliveryQueue, type WriteLimiter } from './sync/service.ts';
import { markDead, purgeExpired, purgeExpiredEpisodes, sweepStale } from './sync/sweep.ts';
import { clientFactory, primaryEndpoint, retryPolicy } from './sync/targets.ts';

export interface Env {
  DB: D1Database;
  DELIVERY_QUEUE: Queue<DeliveryMessage>;
  PARENT_LANE: DurableObjectNamespace<ParentLane>;
  /** Rate limit of the write routes per tenant (wrangler.toml `[[ratelimits]]`). */
  WRITE_RATE_LIMITER?: RateLimit;
  /** Caller authentication of the API (required; see README "Authentication"). */
  API_AUTH?: string;
  /** `local` (local development: allows an open API) or `production`; see README "Configuration". */
  BRIDGE_ENV?: string;
  ALLOW_SYNTHETIC_IDS?: string;
  FHIR_TARGETS?: string;
  BRIDGE_PRIVATE_JWKS?: string;
  DELIVERY_MAX_ATTEMPTS?: string;
  RETRY_AFTER_CAP_SECONDS?: string;
  /** Base of the identifier systems; permanent, required in production (README "Identities"). */
  IDENTIFIER_NAMESPACE?: string;
  IDENTITY_SECRET?: string;
  SWEEP_QUEUED_AFTER_MINUTES?: string;
  SWEEP_RETRY_GRACE_MINUTES?: string;
  BUNDLE_RETENTION_DAYS?: string;
  /** Age after which the scheduled handler reads open coordination requests back again. */
  COORDINATION_REFRESH_MINUTES?: string;
  /** Callers grouped into tenants (README "Tenants"). */
  TENANTS?: string;
  /** Secret: keys of the encryption of patient data in D1 (README "Data at rest"). */
  DATA_ENCRYPTION_KEYS?: string;
  /** EHRs that may open the coordination summary by SMART App Launch (README "Opened from the psychiatry EHR"). */
  SMART_ISSUERS?: string;
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
let configCache: { env: unknown; config: BridgeConfig; auth: InboundAuthenticator; cipher: DataCipher; app?: ReturnType<typeof createApp> } | undefined;
function loaded(env: Env): NonNullable<typeof configCache> {
  if (configCache?.env !== env) {
    const config = loadConfig(env as unknown as Record<string, string | undefined>);
    configCache = {
      env,
      config,
      auth: withTenants(createInboundAuthenticator(config.apiAuth), config.tenants),
      cipher: new DataCipher(config.dataKeys.reveal()),
    };
  }
  return configCache;
}
const config = (env: Env): BridgeConfig => loaded(env).config;
/** The D1 store, encrypting patient data under the configured keys. */
const storeOf = (env: Env): D1Store => new D1Store(env.DB, loaded(env).cipher);

/**
 * Retry-After of a refused write: the rate-limiting binding does not say when its window
 * ends, so the longest window it supports (60 s) is named. Not exported: workerd takes every
 * export of the main module for an entrypoint and refuses to start on a number.
 */
const RATE_LIMIT_RETRY_AFTER_SECONDS = 60;

/** The per-tenant write limit over the rate-limiting binding; none where it is not bound. */
function writeLimiter(env: Env): WriteLimiter | undefined {
  const binding = env.WRITE_RATE_LIMITER;
  if (!binding) return undefined;
  return {
    async admit(tenant) {
      const { success } = await binding.limit({ key: `tenant:${tenant}` });
      return success ? { ok: true } : { ok: false, retryAfterSeconds: RATE_LIMIT_RETRY_AFTER_SECONDS };
    },
  };
}

/**
 * The one fetch every delivery in this isolate passes to its clients: token providers are
 * shared per fetch and target (src/sync/targets.ts), so all parents' deliveries reuse one
 * access token per target instead of one per parent.
 */
const deliveryFetch: typeof fetch = (...a) => fetch(...a);

/** Serialises delivery attempts for one parent: one Durable Object per parent key. */
export class ParentLane extends DurableObject<Env> {
  private tail: Promise<unknown> = Promise.resolve();

  /** Runs one attempt of `jobId` after every attempt already running here. */
  attempt(jobId: string): Promise<AttemptResult | undefined> {
    const run = this.tail.then(() => {
      const cfg = config(this.env);
      return attemptJob(jobId, {
        store: storeOf(this.env),
        clientFor: clientFactory(cfg, deliveryFetch),
        now: Date.now,
        random: Math.random,
        newId: () => crypto.randomUUID(),
        policy: retryPolicy(cfg),
      });
    });
    this.tail = run.catch(() => undefined);
    return run;
  }

  /**
   * Marks `jobId` dead with `reason` unless it has finished, after every attempt already
   * running here, so it never overwrites an attempt's result.
   */
  markDead(jobId: string, reason: string): Promise<boolean> {
    const run = this.tail.then(() => markDead(storeOf(this.env), jobId, reason, Date.now()));
    this.tail = run.catch(() => undefined);
    return run;
  }
}

/** Sends delivery messages in batches of at most 100 (the Queues sendBatch limit). */
function deliveryQueue(env: Env): DeliveryQueue {
  return {
    async send(messages) {
      for (let i = 0; i < messages.length; i += 100) {
        await env.DELIVERY_QUEUE.sendBatch(messages.slice(i, i + 100).map((body) => ({ body })));
      }
    },
  };
}

const MINUTE = 60_000;

/** The HTTP app, built once per isolate and environment (routes are not rebuilt per request). */
function app(env: Env) {
  const state = loaded(env);
  const { config: cfg, auth } = state;
  if (!cfg.allowSyntheticIds && !env.WRITE_RATE_LIMITER) {
    // A deployment with real patients gets a rate limit, or does not start.
    throw new OperationOutcomeError(
      outcome([
        issue(
          'required',
          'WRITE_RATE_LIMITER: the rate-limiting binding ([[ratelimits]] in wrangler.toml) is required where ALLOW_SYNTHETIC_IDS is false',
          'WRITE_RATE_LIMITER',
        ),
      ]),
      500,
    );
  }
  const identity = cfg.identity.reveal();
  return (state.app ??= createApp({
    allowSyntheticIds: cfg.allowSyntheticIds,
    identity,
    auth,
    delivery: () =>
      createDeliveryService(storeOf(env), deliveryQueue(env), {
        allowSyntheticIds: cfg.allowSyntheticIds,
        identity,
        limiter: writeLimiter(env),
        primaryEndpoint: primaryEndpoint(cfg),
        signingKeys: cfg.signingKeys?.reveal(),
      }),
    jwks: async () => cfg.publicJwks,
    ...(cfg.smart.issuers.length ? { smart: smartDepsFrom(cfg, () => storeOf(env), deliveryFetch) } : {}),
  }));
}

/** The settings a configuration error names (its issues' expressions), never their values. */
const settingsOf = (e: OperationOutcomeError): string[] => (e.outcome.issue ?? []).flatMap((i) => i.expression ?? []);

export default {
  fetch(request, env, ctx) {
    let handler: ReturnType<typeof app>;
    try {
      handler = app(env);
    } catch (e) {
      // A bad setting is the operator's to fix: say which one (never its value).
      if (isOperationOutcomeError(e)) {
        log('config.invalid', { settings: settingsOf(e) });
        return new Response(JSON.stringify(e.outcome), { status: 500, headers: { 'content-type': FHIR_JSON, 'cache-control': 'no-store' } });
      }
      throw e;
    }
    return handler.fetch(request, env, ctx);
  },

  async queue(batch, env, _ctx) {
    if (batch.queue === DEAD_LETTER_QUEUE) {
      // Nothing is dropped silently: each job the queue gave up on is marked dead, with
      // the reason, and shows in GET /v1/jobs?status=dead for replay.
      for (const message of batch.messages) {
        const { jobId, parentKey } = message.body;
        try {
          const lane = env.PARENT_LANE.get(env.PARENT_LANE.idFromName(parentKey));
          const changed = await lane.markDead(jobId, DEAD_LETTERED);
          log('dlq.job_received', { jobId, status: changed ? 'marked dead' : 'already finished' });
          message.ack();
        } catch (e) {
          log('dlq.mark_dead_failed', { jobId, error: errorKind(e) });
          message.retry({ delaySeconds: 60 });
        }
      }
      return;
    }
    for (const message of batch.messages) {
      const { jobId, parentKey } = message.body;
      const started = Date.now();
      try {
        const lane = env.PARENT_LANE.get(env.PARENT_LANE.idFromName(parentKey));
        const result = await lane.attempt(jobId);
        const retryInSeconds = result && !result.done ? Math.min(43_200, Math.ceil(result.delayMs / 1000)) : undefined;
        if (retryInSeconds !== undefined) message.retry({ delaySeconds: retryInSeconds });
        else message.ack();
        const job = result?.job;
        log('delivery.attempt', {
          jobId,
          ...(job
            ? {
                tenant: job.tenant,
                status: job.status,
                attempts: job.attempts,
                targets: Object.fromEntries(Object.entries(job.targets).map(([t, r]) => [t, r.status])),
              }
            : { status: 'unknown job' }),
          durationMs: Date.now() - started,
          ...(retryInSeconds !== undefined ? { retryInSeconds } : {}),
        });
      } catch (e) {
        log('queue.attempt_failed', { jobId, error: errorKind(e) });
        message.retry({ delaySeconds: 30 });
      }
    }
  },

  /**
   * Cron Trigger: re-queues jobs whose queue message was lost or never sent, then purges
   * the Bundles of jobs finished longer ago than BUNDLE_RETENTION_DAYS, then reads back the
   * open coordination requests last read more than COORDINATION_REFRESH_MINUTES ago. Logs
   * counts only.
   */
  async scheduled(_controller, env, _ctx) {
    let cfg: BridgeConfig;
    try {
      cfg = config(env);
    } catch (e) {
      if (isOperationOutcomeError(e)) log('config.invalid', { settings: settingsOf(e) });
      throw e;
    }
    const store = storeOf(env);
    const now = Date.now();
    const sweepStarted = now;
    const swept = await sweepStale(
      store,
      deliveryQueue(env),
      { queuedAfterMs: cfg.sweep.queuedAfterMinutes * MINUTE, retryGraceMs: cfg.sweep.retryGraceMinutes * MINUTE },
      now,
    );
    const retention = { retentionMs: cfg.sweep.bundleRetentionDays * 24 * 60 * MINUTE };
    const purged = await purgeExpired(store, retention, now);
    const episodesPurged = await purgeExpiredEpisodes(store, retention, now);
    log('sweep.done', {
      counts: { requeued: swept.requeued.length, markedDead: swept.dead.length, bundlesPurged: purged, episodesPurged },
      durationMs: Date.now() - sweepStarted,
    });
    const readStarted = Date.now();
    // Last, so that a slow or failing primary server never holds up recovery and retention.
    const read = await refreshCoordination(
      { store, clientFor: clientFactory(cfg, deliveryFetch), now: Date.now },
      { olderThanMs: cfg.coordinationRefreshMinutes * MINUTE },
    );
    log('coordination.readback', { counts: { refreshed: read.refreshed, failed: read.failed, skipped: read.skipped }, durationMs: Date.now() - readStarted });
  },
} satisfies ExportedHandler<Env, DeliveryMessage>;
