/**
 * Refuses a deployment whose wrangler.toml still carries placeholders. wrangler runs this as
 * the custom build of `[env.production]` (`[env.production.build] command`) before it bundles
 * or uploads anything, and aborts the deploy when it exits non-zero, so
 * `wrangler deploy --env production` stops with one line per value still to fill
 * (https://developers.cloudflare.com/workers/wrangler/custom-builds/).
 *
 *   node scripts/check-production.mjs [--env production] [--config wrangler.toml]
 *
 * A placeholder is any string starting with REPLACE-WITH-, or the all-zero D1 database_id the
 * local environment uses. The configuration is read by wrangler itself, with its rules for
 * what a named environment inherits. Secrets cannot be seen here: the Worker checks them at
 * start-up and answers 500 naming each missing one.
 *
 * Plain JavaScript, so whichever Node runs wrangler (20 or newer) runs it without a loader.
 */
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { unstable_readConfig } from 'wrangler';

/** The marker every placeholder in wrangler.toml starts with. */
export const PLACEHOLDER = 'REPLACE-WITH-';
const ZERO_ID = '00000000-0000-0000-0000-000000000000';

/** What each placeholder is and where its value comes from, by the key that holds it. */
/** @type {Record<string, string>} */
const HINTS = {
  API_AUTH: 'how callers authenticate: {"type":"jwt",…} or {"type":"bearer","tokensSecret":"API_TOKENS"} (README "Configuration")',
  IDENTIFIER_NAMESPACE: 'an https URL your clinic controls, permanent once used (README "Identities")',
  FHIR_TARGETS: 'the FHIR servers deliveries go to: {"clinic": {"baseUrl": "https://…", "auth": …}} (README "Outbound")',
  database_id: 'the id `wrangler d1 create imh-bridge` prints',
};

/**
 * Every placeholder left in a value, as [path, key] pairs (path like `vars.API_AUTH`).
 * @param {unknown} value @param {string} path @param {string} key @param {[string, string][]} out
 * @returns {[string, string][]}
 */
function placeholders(value, path, key, out) {
  if (typeof value === 'string') {
    if (value.startsWith(PLACEHOLDER) || (key === 'database_id' && value === ZERO_ID)) out.push([path, key]);
  } else if (Array.isArray(value)) {
    value.forEach((v, i) => placeholders(v, `${path}[${i}]`, key, out));
  } else if (value !== null && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) placeholders(v, path ? `${path}.${k}` : k, k, out);
  }
  return out;
}

/**
 * `vars.API_AUTH` → `[env.production.vars] API_AUTH`; `d1_databases[0].database_id` → `[[env.production.d1_databases]] database_id`.
 * @param {string} env @param {string} path @param {string} key
 */
function tomlName(env, path, key) {
  const table = path.slice(0, -(key.length + 1));
  if (!table) return `[env.${env}] ${key}`;
  const array = /\[\d+\]$/.test(table);
  const name = `env.${env}.${table.replace(/\[\d+\]/g, '')}`;
  return `${array ? `[[${name}]]` : `[${name}]`} ${key}`;
}

/**
 * The placeholders still in the environment's resolved configuration, each as one line
 * naming the setting and what to put there; [] when the environment is filled in.
 * @param {string} configPath @param {string} env @returns {string[]}
 */
export function unfilled(configPath, env) {
  const config = unstable_readConfig({ config: configPath, env }, { hideWarnings: true });
  // Only what the Worker is deployed with: the environment's own settings (vars and bindings
  // are not inherited) and the inherited top level.
  const { vars, d1_databases, kv_namespaces, r2_buckets, queues, durable_objects, ratelimits, routes, route, account_id } = config;
  const found = placeholders({ vars, d1_databases, kv_namespaces, r2_buckets, queues, durable_objects, ratelimits, routes, route, account_id }, '', '', []);
  return found.map(([path, key]) => `  ${tomlName(env, path, key)}${HINTS[key] ? `: ${HINTS[key]}` : ''}`);
}

function main() {
  const { values } = parseArgs({
    options: { env: { type: 'string', default: 'production' }, config: { type: 'string' } },
    strict: true,
  });
  const env = String(values.env);
  const configPath = resolve(values.config ?? resolve(dirname(fileURLToPath(import.meta.url)), '..', 'wrangler.toml'));
  const left = unfilled(configPath, env);
  if (left.length === 0) {
    process.stdout.write(`${configPath} [env.${env}]: no placeholders left\n`);
    return;
  }
  process.stderr.write(
    `Refusing to deploy: ${configPath} [env.${env}] still has ${left.length} placeholder${left.length === 1 ? '' : 's'} (${PLACEHOLDER}…). Fill in each:\n` +
      `${left.join('\n')}\n` +
      `(A var passed with --var instead: delete its line from wrangler.toml.) See README "Deploying to Cloudflare".\n`,
  );
  process.exitCode = 1;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main();
