/**
 * /docs as a newcomer reads it: HTML without Markdown left in it, authentication explained once
 * (what each route needs, and that the local instance needs none), and one request example per
 * route that works as written against the local, open instance.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createApp } from '../../src/http/app.ts';
import { curlLine, docsPage, LOCAL_BASE, openApiDocument, REQUEST_EXAMPLES } from '../../src/http/openapi.ts';
import { MemoryStore } from '../../src/sync/memory-store.ts';
import { createDeliveryService } from '../../src/sync/service.ts';

const root = resolve(import.meta.dirname, '../..');
const page = docsPage();
const doc = openApiDocument() as { paths: Record<string, Record<string, { operationId: string }>> };
const operations = Object.entries(doc.paths).flatMap(([path, methods]) =>
  Object.entries(methods).map(([method, op]) => ({ path, method: method.toUpperCase(), id: op.operationId })),
);
const count = (s: string) => page.split(s).length - 1;
const unescapeHtml = (s: string) => s.replaceAll('&lt;', '<').replaceAll('&gt;', '>').replaceAll('&quot;', '"').replaceAll('&amp;', '&');

describe('/docs', () => {
  it('shows no Markdown: no backticks, no ** emphasis', () => {
    expect(page).not.toContain('`');
    expect(page).not.toContain('**');
    expect(page).toContain('<code>Cache-Control: no-store</code>');
  });

  it('explains authentication once, and the local instance needs no token', () => {
    expect(count('<h2 id="authentication">Authentication</h2>')).toBe(1);
    expect(count('Authorization: Bearer &lt;token&gt;')).toBe(1);
    expect(page).not.toContain('Authentication: every /v1 operation');
    // The 401/403 answers are described in that section, not again on every route.
    expect(page).not.toContain('No token, or a token that is not valid');
    expect(page).toMatch(/<code>npm start<\/code> runs .* is open: it needs no token/);
    expect(page).toContain(LOCAL_BASE);
  });

  it('says per route whether it needs a token, and which scope', () => {
    expect(count('Public: no token, on any deployment.')).toBe(operations.filter((o) => !o.path.startsWith('/v1')).length);
    expect(page).toContain('Needs a bearer token with <code>system/*.write</code> or <code>system/*.*</code> on a deployment; none on the local instance.');
    expect(page).toContain('Needs a bearer token with <code>system/*.read</code> or <code>system/*.*</code> on a deployment; none on the local instance.');
  });

  it('has one request example per route, for that method and path, naming files the repository has', () => {
    expect(operations.length).toBeGreaterThan(15);
    for (const op of operations) {
      const e = REQUEST_EXAMPLES[op.id];
      expect(e, `no example for ${op.method} ${op.path}`).toBeDefined();
      if (!e) continue;
      expect(e.method).toBe(op.method);
      const template = new RegExp(`^${op.path.replace(/[$.]/g, '\\$&').replace(/\{[^}]+\}/g, '[^/?]+')}(\\?.*)?$`);
      expect(e.path).toMatch(template);
      if (e.bodyFile) expect(existsSync(join(root, e.bodyFile)), e.bodyFile).toBe(true);
      expect(unescapeHtml(page)).toContain(curlLine(e));
    }
    expect(Object.keys(REQUEST_EXAMPLES).sort()).toEqual(operations.map((o) => o.id).sort());
  });

  it('every example answers as documented when sent to an open instance (npm start has no token)', async () => {
    const service = createDeliveryService(new MemoryStore(), { send: async () => undefined });
    const app = createApp({ allowSyntheticIds: true, delivery: () => service, jwks: async () => ({ keys: [] }) });
    // The PUT first: its Location gives the job id the job examples use.
    const order = Object.entries(REQUEST_EXAMPLES).sort(([a], [b]) => Number(b === 'submitEpisode') - Number(a === 'submitEpisode'));
    let jobId = '';
    const statuses: Record<string, number> = {};
    for (const [id, e] of order) {
      const r = await app.request(e.path.replace('{id}', jobId), {
        method: e.method,
        headers: e.contentType ? { 'content-type': e.contentType } : {},
        body: e.bodyFile ? readFileSync(join(root, e.bodyFile)) : undefined,
      });
      statuses[id] = r.status;
      if (id === 'submitEpisode') jobId = (r.headers.get('location') ?? '').split('/').pop() ?? '';
    }
    expect(jobId).not.toBe('');
    expect(statuses).toEqual({
      ...Object.fromEntries(Object.keys(REQUEST_EXAMPLES).map((id) => [id, 200])),
      submitEpisode: 202,
      root: 302,
      // A job that was just queued is neither dead nor failed: $replay says so (409), as documented.
      replayJob: 409,
    });
  });
});
