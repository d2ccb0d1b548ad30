import { createServer } from 'node:net';
import { cloudflareTest, readD1Migrations } from '@cloudflare/vitest-plugin';
import { defineConfig } from 'vitest/config';

/** A free loopback port for the sandbox FHIR server the workerd tests deliver to. */
async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

export default defineConfig(async () => {
  // The config may be evaluated more than once in a run; keep the first port.
  const sandboxPort = Number(process.env.TEST_SANDBOX_PORT || (await freePort()));
  process.env.TEST_SANDBOX_PORT = String(sandboxPort);
  // A second sandbox: the server of the mother's primary treatment team (organisation 993778125).
  const primarySandboxPort = Number(process.env.TEST_PRIMARY_SANDBOX_PORT || (await freePort()));
  process.env.TEST_PRIMARY_SANDBOX_PORT = String(primarySandboxPort);
  const migrations = await readD1Migrations('./src/sync/d1-migrations');
  return {
    test: {
      projects: [
        {
          test: {
            name: 'unit',
            include: ['test/unit/**/*.test.ts'],
            environment: 'node',
            testTimeout: 30_000,
            // The migration tests run the D1 SQL on node:sqlite, which announces itself as
            // experimental on every run; nothing in the product uses it.
            execArgv: ['--disable-warning=ExperimentalWarning'],
          },
        },
        {
          test: { name: 'integration', include: ['test/integration/**/*.test.ts'], environment: 'node', testTimeout: 120_000, hookTimeout: 60_000 },
        },
        {
          // LHC-Forms in headless Chromium (Debian's chromium; skips loudly without it).
          test: { name: 'browser', include: ['test/browser/**/*.test.ts'], environment: 'node', testTimeout: 60_000, hookTimeout: 600_000 },
        },
        {
          plugins: [
            cloudflareTest({
              // [env.local]: the only configuration that may run with an open API (BRIDGE_ENV local).
              wrangler: { configPath: './wrangler.toml', environment: 'local' },
              miniflare: {
                bindings: {
                  TEST_MIGRATIONS: migrations,
                  FHIR_TARGETS: JSON.stringify({
                    clinic: { baseUrl: `http://127.0.0.1:${sandboxPort}/fhir`, auth: { type: 'none' }, timeoutMs: 10_000 },
                    primary: { '993778125': { baseUrl: `http://127.0.0.1:${primarySandboxPort}/fhir`, auth: { type: 'none' }, timeoutMs: 10_000 } },
                  }),
                },
              },
            }),
          ],
          test: {
            name: 'http',
            include: ['test/http/**/*.test.ts'],
            setupFiles: ['test/http/setup.ts'],
            globalSetup: ['test/http/global-setup.ts'],
            testTimeout: 60_000,
          },
        },
      ],
    },
  };
});
