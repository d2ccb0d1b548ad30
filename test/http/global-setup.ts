/**
 * Starts the sandbox FHIR servers the Worker under test delivers to (in Node, beside workerd):
 * the clinic's own, and the primary treatment team's of the mother's example (993778125).
 */
import { startSandbox } from '../../sandbox/server.ts';

export default async function setup() {
  const sandbox = await startSandbox({ port: Number(process.env.TEST_SANDBOX_PORT) });
  const primary = await startSandbox({ port: Number(process.env.TEST_PRIMARY_SANDBOX_PORT) });
  return async () => {
    await primary.close();
    await sandbox.close();
  };
}
