import { applyD1Migrations, env } from 'cloudflare:test';

// Every test file starts with the delivery tables in place.
await applyD1Migrations(env.DB, env.TEST_MIGRATIONS);
