/** Starts the sandbox FHIR server that the Worker under test delivers to (in Node, beside workerd). */
import { startSandbox } from '../../src/sandbox/server.ts';

export default async function setup() {
  const sandbox = await startSandbox({ port: Number(process.env.TEST_SANDBOX_PORT) });
  return async () => sandbox.close();
}
