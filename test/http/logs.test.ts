/**
 * The Worker's logs inside workerd (src/log.ts): through a realistic run (an auth refusal, a
 * refused configuration, mapping an episode, delivering it to a FHIR server that refuses it
 * quoting the patient, one that cannot be reached, the dead-letter queue and the Cron Trigger)
 * every line the Worker writes is one JSON object with level, event and time, and none holds
 * the synthetic patient's names, national ids, phone, notes or referral reason, nor a token.
 */
import { createExecutionContext, createMessageBatch, createScheduledController, env, getQueueResult, SELF, waitOnExecutionContext } from 'cloudflare:test';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import completed from '../../examples/completed-mother.episode.json';
import { LOG_EVENTS } from '../../src/log.ts';
import { DEAD_LETTER_QUEUE } from '../../src/sync/dead-letter.ts';
import worker from '../../src/worker.ts';
import { capabilityStatement } from '../fixtures/capability.ts';
import { PRODUCTION_IDENTITY } from '../fixtures/production.ts';

type Env = typeof env;
/** The FHIR servers of the clinic and of the primary team, which this test stands in for. */
const targets = JSON.parse(env.FHIR_TARGETS as string) as { clinic: { baseUrl: string }; primary: Record<string, { baseUrl: string }> };
const servers = [targets.clinic.baseUrl, ...Object.values(targets.primary).map((t) => t.baseUrl)];
const TOKEN = 'logs-test-api-token-0123456789abcdefghij';

/** Every string of the example that identifies the patient or is clinical text. */
const p = completed.parent;
const PERSONAL = [
  p.nationalId,
  `${p.nationalId.slice(0, 6)} ${p.nationalId.slice(6)}`,
  ...p.given,
  p.family,
  p.phone,
  p.birthDate,
  ...completed.infants.flatMap((i) => [i.nationalId, ...i.given]),
  completed.referral.reason,
  ...completed.sessions.flatMap((s) => ((s as { note?: string }).note ? [(s as { note: string }).note] : [])),
];

/** What the clinic's server says, as a server that quotes what it refused would. */
const QUOTED = `Patient?identifier=urn:oid:2.16.578.1.12.4.1.4.1|${p.nationalId} matches ${p.given[0]} ${p.family} (tel ${p.phone})`;
let serverDown = false;

const lines: { method: string; text: string }[] = [];
const realFetch = globalThis.fetch;

beforeAll(() => {
  vi.spyOn(globalThis, 'fetch').mockImplementation(async (input, init) => {
    const url = input instanceof Request ? input.url : String(input);
    if (!servers.some((base) => url.startsWith(base))) return realFetch(input, init);
    if (serverDown) throw new TypeError(`connect ECONNREFUSED while sending ${p.given[0]} ${p.family} ${p.nationalId}`);
    if (url.endsWith('/metadata')) {
      return Response.json(capabilityStatement());
    }
    return new Response(
      JSON.stringify({
        resourceType: 'OperationOutcome',
        issue: [{ severity: 'error', code: 'business-rule', diagnostics: QUOTED, details: { text: QUOTED } }],
      }),
      {
        status: 422,
        headers: { 'content-type': 'application/fhir+json' },
      },
    );
  });
  for (const method of ['log', 'info', 'warn', 'error', 'debug'] as const) {
    vi.spyOn(console, method).mockImplementation((...args: unknown[]) => {
      lines.push({
        method,
        text: args.map((a) => (typeof a === 'string' ? a : a instanceof Error ? `${a.name}: ${a.message}\n${a.stack}` : JSON.stringify(a))).join(' '),
      });
    });
  }
});
afterAll(() => vi.restoreAllMocks());

interface JobView {
  id: string;
  status: string;
  targets: Record<string, { status: string }>;
}
const view = async (location: string) => (await (await SELF.fetch(`http://bridge${location}`)).json()) as JobView;
async function settled(location: string, timeoutMs = 30_000): Promise<JobView> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const j = await view(location);
    if (!['queued'].includes(j.status) || Date.now() > until) return j;
    await new Promise((r) => setTimeout(r, 200));
  }
}

const entries = () => lines.map((l) => ({ ...l, json: JSON.parse(l.text) as Record<string, unknown> }));

describe('the Worker logs JSON lines without patient data', () => {
  it('through refusals, mapping, failed deliveries, the dead-letter queue and the Cron Trigger', async () => {
    // An API caller with a wrong token is refused.
    const bearer = { ...env, API_AUTH: '{"type":"bearer","tokensSecret":"API_TOKENS"}', API_TOKENS: JSON.stringify({ journal: TOKEN }) } as Env;
    const refused = await worker.fetch(
      new Request(`http://bridge/v1/episodes/${completed.episodeId}`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN.replace('0', 'X')}` },
        body: JSON.stringify(completed),
      }) as Parameters<typeof worker.fetch>[0],
      bearer,
      createExecutionContext(),
    );
    expect(refused.status).toBe(401);

    // A production deployment missing its targets: refused, and the log names the setting.
    const production = {
      ...bearer,
      ...PRODUCTION_IDENTITY,
      DATA_ENCRYPTION_KEYS: JSON.stringify([{ kid: 'test-1', k: 'x'.repeat(43) }]),
      FHIR_TARGETS: undefined,
    } as unknown as Env;
    expect((await worker.fetch(new Request('http://bridge/v1/jobs') as Parameters<typeof worker.fetch>[0], production, createExecutionContext())).status).toBe(
      500,
    );

    // Mapping the episode.
    const mapped = await SELF.fetch('http://bridge/v1/episodes/$map', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(completed),
    });
    expect(mapped.status).toBe(200);

    // Delivery through the real queue to a server that refuses the Bundle, quoting the patient.
    const put = await SELF.fetch(`http://bridge/v1/episodes/${completed.episodeId}`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(completed),
    });
    expect(put.status).toBe(202);
    const location = put.headers.get('location') as string;
    const failed = await settled(location);
    expect(failed.targets.clinic?.status).toBe('failed');

    // Then the server cannot be reached (the network error quotes the patient too): retrying.
    serverDown = true;
    const again = { ...completed, episodeId: `${completed.episodeId}-LOGS` };
    const put2 = await SELF.fetch(`http://bridge/v1/episodes/${again.episodeId}`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(again),
    });
    const retrying = await settled(put2.headers.get('location') as string);
    expect(retrying.status).toBe('retrying');

    // The dead-letter queue and the Cron Trigger.
    const batch = createMessageBatch(DEAD_LETTER_QUEUE, [
      { id: 'msg-logs', timestamp: Date.now(), attempts: 1, body: { jobId: failed.id, parentKey: 'unknown-parent-key' } },
    ]);
    const ctx = createExecutionContext();
    await worker.queue(batch, env, ctx);
    await getQueueResult(batch, ctx);
    const cron = createExecutionContext();
    await worker.scheduled(createScheduledController({ scheduledTime: Date.now(), cron: '*/5 * * * *' }), env, cron);
    await waitOnExecutionContext(cron);

    // Every line is one JSON object, with a known event at its level and a time.
    expect(lines.length).toBeGreaterThan(3);
    for (const { method, text } of lines) {
      expect(() => JSON.parse(text), text).not.toThrow();
      const o = JSON.parse(text) as Record<string, unknown>;
      expect(Object.keys(LOG_EVENTS), text).toContain(o.event);
      expect(o.level).toBe(LOG_EVENTS[o.event as keyof typeof LOG_EVENTS]);
      expect(method).toBe(o.level === 'info' ? 'log' : o.level);
      expect(new Date(o.time as string).toISOString()).toBe(o.time);
    }
    // Nothing about the patient, no token, not the server's words.
    const all = lines.map((l) => l.text).join('\n');
    for (const s of PERSONAL) expect(all.toLowerCase(), `a log line holds "${s}"`).not.toContain(s.toLowerCase());
    expect(all).not.toContain(TOKEN);
    expect(all).not.toContain('ECONNREFUSED');
    expect(all).not.toContain('business-rule');

    // And what an operator needs is there.
    const logged = entries().map((e) => e.json);
    expect(logged).toContainEqual(expect.objectContaining({ level: 'error', event: 'config.invalid', settings: ['FHIR_TARGETS'] }));
    expect(logged).toContainEqual(
      expect.objectContaining({
        level: 'info',
        event: 'delivery.attempt',
        jobId: failed.id,
        status: 'failed',
        targets: expect.objectContaining({ clinic: 'failed' }),
        tenant: 'local',
        attempts: 1,
        durationMs: expect.any(Number),
      }),
    );
    expect(logged).toContainEqual(
      expect.objectContaining({ event: 'delivery.attempt', jobId: retrying.id, status: 'retrying', retryInSeconds: expect.any(Number) }),
    );
    expect(logged).toContainEqual(expect.objectContaining({ level: 'warn', event: 'dlq.job_received', jobId: failed.id }));
    expect(logged).toContainEqual(
      expect.objectContaining({ event: 'sweep.done', counts: expect.objectContaining({ requeued: expect.any(Number), bundlesPurged: expect.any(Number) }) }),
    );
    expect(logged).toContainEqual(
      expect.objectContaining({ event: 'coordination.readback', counts: expect.objectContaining({ refreshed: expect.any(Number) }) }),
    );
  }, 60_000);
});
