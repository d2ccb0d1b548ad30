/**
 * What an operator watches: GET /v1/health/deliveries, the caller's tenant's queue depth,
 * oldest waiting job and dead/failed jobs per target. Counts, ages and target names only;
 * never an episode, a key or a server's words. Answered `no-store` (app-wide middleware).
 */
import { type Context, Hono } from 'hono';
import type { DeliveryService } from '../sync/service.ts';
import { type AuthVariables, requestTenant } from './auth.ts';
import { outcomeResponse } from './errors.ts';

/** Routes under /v1 for delivery health. */
export function healthRoutes(service: (c: Context) => DeliveryService): Hono<{ Variables: AuthVariables }> {
  const app = new Hono<{ Variables: AuthVariables }>();
  app.get('/health/deliveries', async (c) => {
    const tenant = requestTenant(c);
    const svc = service(c);
    if (!svc.deliveryHealth) return outcomeResponse(c, 501, 'not-supported', "this deployment's store does not report delivery health");
    const health = await svc.deliveryHealth(tenant);
    c.header('cache-control', 'no-store');
    return c.json({ tenant, ...health });
  });
  return app;
}
