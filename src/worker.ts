/** Cloudflare Worker entry: binds the environment to the HTTP app. */
import { createApp } from './http/app.ts';

export interface Env {
  ALLOW_SYNTHETIC_IDS?: string;
}

let app: ReturnType<typeof createApp> | undefined;
let appFor: string | undefined;

export default {
  fetch(request, env, ctx) {
    const flag = env.ALLOW_SYNTHETIC_IDS ?? 'true';
    if (!app || appFor !== flag) {
      app = createApp({ allowSyntheticIds: flag !== 'false' });
      appFor = flag;
    }
    return app.fetch(request, env, ctx);
  },
} satisfies ExportedHandler<Env>;
