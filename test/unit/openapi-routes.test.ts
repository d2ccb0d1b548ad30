/**
 * The API description matches the API: every route the Hono app registers is in
 * /openapi.json and nothing else is; each operation's security is what the auth middleware
 * enforces (src/http/auth.ts); and the answers a client must handle (401/403 where a token
 * is needed, 413/415 where a JSON body is taken, 429 with Retry-After on writes,
 * Cache-Control: no-store under /v1) are described where they occur.
 */
import { describe, expect, it } from 'vitest';
import { type Access, allows } from '../../src/auth/inbound.ts';
import { createApp } from '../../src/http/app.ts';
import { accessFor, PUBLIC_PATHS } from '../../src/http/auth.ts';
import { openApiDocument } from '../../src/http/openapi.ts';
import type { DeliveryService } from '../../src/sync/service.ts';

type Response = { description: string; headers?: Record<string, unknown>; content?: Record<string, unknown> };
type Operation = { security?: { bearer: string[] }[]; requestBody?: { content: Record<string, unknown> }; responses: Record<string, Response> };
const doc = openApiDocument() as { paths: Record<string, Record<string, Operation>> };

/** The app as the Worker builds it: with delivery, so its routes are registered too. */
const app = createApp({ allowSyntheticIds: true, delivery: () => ({}) as DeliveryService });

/** `METHOD /path/{param}` of every route the app answers (middleware registrations left out). */
const appRoutes = [...new Set(app.routes.filter((r) => r.method !== 'ALL').map((r) => `${r.method} ${r.path.replace(/:([A-Za-z]+)/g, '{$1}')}`))].sort();
const documented = Object.entries(doc.paths)
  .flatMap(([path, methods]) => Object.keys(methods).map((m) => `${m.toUpperCase()} ${path}`))
  .sort();
const operations = Object.entries(doc.paths).flatMap(([path, methods]) =>
  Object.entries(methods).map(([method, op]) => ({ method: method.toUpperCase(), path, op })),
);

/** A concrete request path for a templated one. */
const concrete = (path: string) => path.replace(/\{[^}]+\}/g, 'x-1');

/** What the middleware enforces, in the form the document declares it. */
function declared(access: Access | 'public'): { bearer: string[] }[] {
  if (access === 'public') return [];
  if (access === 'any') return [{ bearer: [] }];
  return [{ bearer: [`system/*.${access}`] }, { bearer: ['system/*.*'] }];
}

describe('OpenAPI document vs the routes', () => {
  it('lists exactly the routes the app registers', () => {
    expect(appRoutes.length).toBeGreaterThan(15);
    expect(documented).toEqual(appRoutes);
  });

  it.each(operations.map((o) => [`${o.method} ${o.path}`, o] as const))('%s declares the security the middleware enforces', (_name, { method, path, op }) => {
    const p = concrete(path);
    const access = PUBLIC_PATHS.has(p) ? 'public' : accessFor(method, p);
    expect(op.security).toEqual(declared(access));
    if (access === 'write' || access === 'read') {
      // Any one of the declared scopes is enough; no scope at all is not.
      for (const { bearer } of op.security!) expect(allows(bearer, access), bearer.join()).toBe(true);
      expect(allows([], access)).toBe(false);
    }
  });
});

describe('OpenAPI document: the answers of each operation', () => {
  const protectedOps = operations.filter((o) => !PUBLIC_PATHS.has(concrete(o.path)));
  const writes = protectedOps.filter((o) => accessFor(o.method, concrete(o.path)) === 'write');

  it('401 (with WWW-Authenticate), 403 and 503 wherever a token is needed', () => {
    expect(protectedOps.length).toBeGreaterThan(10);
    for (const { method, path, op } of protectedOps) {
      expect(Object.keys(op.responses), `${method} ${path}`).toEqual(expect.arrayContaining(['401', '403', '503']));
      expect(op.responses['401']?.headers, `${method} ${path}`).toHaveProperty('WWW-Authenticate');
    }
  });

  it('413 and 415 wherever a body is taken; 400 for the strict parser where it is JSON', () => {
    for (const { method, path, op } of operations.filter((o) => o.op.requestBody)) {
      expect(Object.keys(op.responses), `${method} ${path}`).toEqual(expect.arrayContaining(['413', '415']));
      if ('application/json' in op.requestBody!.content) expect(op.responses['400']?.description, `${method} ${path}`).toMatch(/strict JSON parser/);
    }
  });

  it('429 with Retry-After on every write route, and only there', () => {
    expect(writes.map((o) => `${o.method} ${o.path}`).sort()).toEqual([
      'POST /v1/episodes/$import',
      'POST /v1/jobs/{id}/$replay',
      'PUT /v1/episodes/{episodeId}',
    ]);
    for (const { method, path, op } of operations) {
      const isWrite = writes.some((w) => w.op === op);
      expect('429' in op.responses, `${method} ${path}`).toBe(isWrite);
      if (isWrite) expect(op.responses['429']?.headers, `${method} ${path}`).toHaveProperty('Retry-After');
    }
  });

  it("404 for jobs (another tenant's included), 409 and 410 on $replay", () => {
    for (const path of ['/v1/jobs/{id}', '/v1/jobs/{id}/$replay']) {
      const op = Object.values(doc.paths[path]!)[0]!;
      expect(op.responses['404']?.description).toMatch(/another tenant/);
    }
    expect(Object.keys(doc.paths['/v1/jobs/{id}/$replay']!.post!.responses)).toEqual(expect.arrayContaining(['202', '404', '409', '410', '429']));
  });

  it('Cache-Control: no-store on every answer under /v1, and not on public ones', () => {
    for (const { method, path, op } of operations) {
      for (const [status, r] of Object.entries(op.responses)) {
        const where = `${method} ${path} ${status}`;
        if (path.startsWith('/v1/')) expect(r.headers, where).toHaveProperty('Cache-Control');
        else expect(r.headers?.['Cache-Control'], where).toBeUndefined();
      }
    }
  });
});
