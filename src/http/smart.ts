/**
 * The coordination summary opened from a psychiatry EHR: the bridge as a confidential SMART
 * app, EHR launch (SMART App Launch 2.x, https://hl7.org/fhir/smart-app-launch/app-launch.html).
 *
 * - `GET /smart/launch?iss&launch`: only configured issuers (SMART_ISSUERS); discovery through
 *   `{iss}/.well-known/smart-configuration`; redirect to its authorize endpoint with `state`, a
 *   `nonce` and PKCE S256, all three kept in a short-lived encrypted pre-auth cookie.
 * - `GET /smart/callback?code&state`: `state` checked against that cookie, the code exchanged at
 *   the token endpoint as a confidential client (client_secret_basic), the id token verified
 *   with jose against the EHR's JWKS (iss, aud = client id, exp, nonce), the patient in context
 *   read from the EHR with the access token for the national id, matched to the stored episodes
 *   whose consent names the EHR's organisation as primary treatment, and a 15-minute session in
 *   an encrypted (JWE) HttpOnly, Secure, SameSite=Lax cookie.
 * - `GET /smart/summary[?e=<n>]`: the summary page of an episode of the session (a list first when
 *   there are several), the consent evaluated again at every view.
 *
 * Every view and every refusal is audited on the clinic's server (coordination/audit.ts). A view
 * is answered only once its AuditEvent is written (503 otherwise); a refusal shows nothing of the
 * record, so its page is answered even when its AuditEvent could not be written (logged).
 * Refusal pages say what happened and what to do, never anything the viewer did not already have.
 */
import type { AuditEvent, Patient } from '@medplum/fhirtypes';
import { type Context, Hono } from 'hono';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import { base64url, createLocalJWKSet, EncryptJWT, type JWTPayload, jwtDecrypt, jwtVerify } from 'jose';
import type { BridgeConfig, SmartIssuer } from '../config.ts';
import { LOOPBACK } from '../config-fields.ts';
import { type SummaryViewer, summaryViewAuditEvent } from '../coordination/audit.ts';
import { evaluateGate } from '../coordination/gate.ts';
import { renderSummaryPage, SUMMARY_PAGE_CSP } from '../coordination/summary-page.ts';
import { esc, formatDate, type SummaryLang } from '../coordination/summary-text.ts';
import type { Episode } from '../domain/episode.ts';
import { checkNationalId } from '../domain/identifiers.ts';
import type { IdentityOptions } from '../fhir/identity.ts';
import { FHIR_JSON } from '../fhir/json.ts';
import { isOperationOutcomeError } from '../fhir/outcome.ts';
import { NO } from '../fhir/systems.ts';
import { errorKind, log } from '../log.ts';
import { personKey } from '../sync/episodes.ts';
import { clientFactory } from '../sync/targets.ts';
import type { DeliveryStore, StoredEpisode } from '../sync/types.ts';

/** The scopes the bridge asks for: the launch context, an id token naming the user, and the patient's record. */
export const SMART_SCOPE = 'launch openid fhirUser patient/Patient.read';
/** How long a launch may take from the EHR's redirect to the callback. */
export const PRE_AUTH_SECONDS = 600;
/** How long a viewing session lasts. */
export const SESSION_SECONDS = 900;
export const PRE_AUTH_COOKIE = 'imh_smart_launch';
export const SESSION_COOKIE = 'imh_smart_session';
const COOKIE_PATH = '/smart';
const FETCH_TIMEOUT_MS = 10_000;
const ID_TOKEN_ALGS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512'];
const FHIR_ID = /^[A-Za-z0-9\-.]{1,64}$/;

export interface SmartDeps {
  issuers: readonly SmartIssuer[];
  /** The 256-bit key of the launch and session cookies (JWE `dir` + A256GCM); see {@link smartCookieKey}. */
  cookieKey: () => Promise<Uint8Array>;
  /** The stored episodes (findEpisodesByPerson, getEpisode). */
  episodes: () => Pick<DeliveryStore, 'findEpisodesByPerson' | 'getEpisode'>;
  identity: IdentityOptions;
  allowSyntheticIds: boolean;
  /** Writes an AuditEvent on the clinic's server (PUT AuditEvent/{id}); throws when it cannot. */
  audit: (event: AuditEvent) => Promise<void>;
  /** For discovery, token, JWKS and Patient requests to the EHR. */
  fetch?: typeof fetch;
  now?: () => number;
}

/**
 * The cookie key: HKDF-SHA-256 of the first (encrypting) key of DATA_ENCRYPTION_KEYS, so no
 * further secret is needed; rotating that key ends open sessions, which last minutes anyway.
 */
export async function smartCookieKey(dataKey: Uint8Array): Promise<Uint8Array> {
  const ikm = await crypto.subtle.importKey('raw', dataKey as BufferSource, 'HKDF', false, ['deriveBits']);
  const bits = await crypto.subtle.deriveBits(
    { name: 'HKDF', hash: 'SHA-256', salt: new Uint8Array(32), info: new TextEncoder().encode('imh-bridge/smart-cookie/v1') },
    ikm,
    256,
  );
  return new Uint8Array(bits);
}

/** SMART dependencies from the bridge configuration: audits go to the clinic target. */
export function smartDepsFrom(config: BridgeConfig, episodes: SmartDeps['episodes'], fetchImpl: typeof fetch = (...a) => fetch(...a)): SmartDeps {
  const clinic = clientFactory(config, fetchImpl)('clinic');
  let key: Promise<Uint8Array> | undefined;
  return {
    issuers: config.smart.issuers,
    cookieKey: () => (key ??= smartCookieKey((config.dataKeys.reveal()[0] as { key: Uint8Array }).key)),
    episodes,
    identity: config.identity.reveal(),
    allowSyntheticIds: config.allowSyntheticIds,
    audit: async (event) => {
      await clinic.request('PUT', `AuditEvent/${event.id}`, event);
    },
    fetch: fetchImpl,
  };
}

// ---------------------------------------------------------------------------------------
// Words of the pages.

const TEXT = {
  refusedTitle: { nb: 'Sammendraget kan ikke vises', en: 'The summary cannot be shown' },
  again: { nb: 'Åpne sammendraget på nytt fra journalsystemet.', en: 'Open the summary again from the EHR.' },
  contact: {
    nb: 'Har dere spørsmål, kontakt sped- og småbarnsteamet som har pasienten.',
    en: 'If you have questions, contact the infant mental health team that sees the patient.',
  },
  listTitle: { nb: 'Koordineringssammendrag', en: 'Coordination summaries' },
  listIntro: {
    nb: 'Klinikken har flere forløp for denne pasienten som dere kan se:',
    en: 'The clinic has several episodes for this patient that you may see:',
  },
  started: { nb: 'startet', en: 'started' },
} as const;

type Reason =
  | 'bad-launch'
  | 'unknown-issuer'
  | 'ehr-unavailable'
  | 'no-launch'
  | 'bad-state'
  | 'sign-in-refused'
  | 'bad-token'
  | 'no-national-id'
  | 'no-summary'
  | 'consent-withdrawn'
  | 'consent-expired'
  | 'consent-other'
  | 'session-ended'
  | 'audit-unavailable';

/** What the viewer reads, and the status; the audit's reason is written separately (it may be more precise). */
const REFUSAL: Record<Reason, { status: 400 | 401 | 403 | 404 | 502 | 503; nb: string; en: string }> = {
  'bad-launch': {
    status: 400,
    nb: 'Oppstarten manglet opplysninger fra journalsystemet (iss og launch).',
    en: 'The launch lacked what the EHR sends (iss and launch).',
  },
  'unknown-issuer': { status: 403, nb: 'Dette journalsystemet er ikke registrert hos klinikken.', en: 'This EHR is not registered with the clinic.' },
  'ehr-unavailable': {
    status: 502,
    nb: 'Journalsystemets påloggingstjeneste svarte ikke som ventet. Prøv igjen om litt.',
    en: 'The EHR’s sign-in service did not answer as expected. Try again shortly.',
  },
  'no-launch': {
    status: 400,
    nb: 'Denne pålogginga ble ikke startet her, eller den tok for lang tid.',
    en: 'This sign-in was not started here, or it took too long.',
  },
  'bad-state': { status: 400, nb: 'Svaret fra pålogginga hører ikke til denne oppstarten.', en: 'The sign-in answer does not belong to this launch.' },
  'sign-in-refused': { status: 403, nb: 'Journalsystemet godkjente ikke pålogginga.', en: 'The EHR did not approve the sign-in.' },
  'bad-token': { status: 400, nb: 'Pålogginga fra journalsystemet kunne ikke bekreftes.', en: 'The sign-in from the EHR could not be verified.' },
  'no-national-id': {
    status: 403,
    nb: 'Pasienten i journalsystemet har ikke fødselsnummer eller D-nummer som klinikken kan bruke.',
    en: 'The patient in the EHR has no national id the clinic can use.',
  },
  'no-summary': {
    status: 403,
    nb: 'Klinikken har ikke noe koordineringssammendrag for denne pasienten som deres virksomhet kan se.',
    en: 'The clinic has no coordination summary for this patient that your organisation may see.',
  },
  'consent-withdrawn': {
    status: 403,
    nb: 'Pasienten har trukket samtykket til å dele med behandlingsteamet deres. Det dere allerede har mottatt, er fortsatt deres.',
    en: 'The patient has withdrawn the consent to share with your treatment team. What you have already received stays yours.',
  },
  'consent-expired': {
    status: 403,
    nb: 'Pasientens samtykke til å dele med behandlingsteamet deres har utløpt.',
    en: 'The patient’s consent to share with your treatment team has expired.',
  },
  'consent-other': {
    status: 403,
    nb: 'Pasientens samtykke gir ikke tilgang til sammendraget nå.',
    en: 'The patient’s consent does not allow the summary now.',
  },
  'session-ended': { status: 401, nb: 'Økta er avsluttet (den varer 15 minutter).', en: 'The session has ended (it lasts 15 minutes).' },
  'audit-unavailable': {
    status: 503,
    nb: 'Visningen kan ikke logges akkurat nå, så sammendraget vises ikke. Prøv igjen om litt.',
    en: 'The view cannot be logged right now, so the summary is not shown. Try again shortly.',
  },
};

const PAGE_CSS = `body{margin:0;font-family:system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;color:#1a1a1a;background:#fff;line-height:1.5;font-size:16px}
main{max-width:40rem;margin:2rem auto;padding:0 1rem}h1{font-size:1.4rem;color:#10304d;border-bottom:3px solid #1d4f7a;padding-bottom:.4rem}
a{color:#0b4f8a}li{margin:.4rem 0}`;

function page(lang: SummaryLang, title: string, body: string): string {
  return `<!DOCTYPE html>
<html lang="${lang}">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${esc(title)}</title><style>${PAGE_CSS}</style></head>
<body><main><h1>${esc(title)}</h1>
${body}
</main></body>
</html>
`;
}

/** `?lang=` first, then Accept-Language (Norwegian → bokmål, English → English), then bokmål. */
export function pickLang(query: string | undefined, acceptLanguage: string | undefined): SummaryLang {
  if (query === 'nb' || query === 'en') return query;
  const tags = (acceptLanguage ?? '')
    .split(',')
    .map((part, i) => {
      const [tag, ...params] = part.trim().split(';');
      const q = Number(
        params
          .find((p) => p.trim().startsWith('q='))
          ?.trim()
          .slice(2) ?? 1,
      );
      return { tag: (tag ?? '').toLowerCase(), q: Number.isNaN(q) ? 0 : q, i };
    })
    .filter((t) => t.tag && t.q > 0)
    .sort((a, b) => b.q - a.q || a.i - b.i);
  for (const { tag } of tags) {
    if (/^(nb|nn|no)(-|$)/.test(tag)) return 'nb';
    if (/^en(-|$)/.test(tag)) return 'en';
  }
  return 'nb';
}

// ---------------------------------------------------------------------------------------

interface Discovery {
  issuer?: string;
  authorization_endpoint: string;
  token_endpoint: string;
  jwks_uri: string;
}

/** Pre-auth cookie claims: which issuer, and the secrets of this one launch. */
interface PreAuth {
  iss: string;
  state: string;
  verifier: string;
  nonce: string;
  /** The endpoints discovery found, so the callback does not have to trust anything else. */
  token: string;
  jwks: string;
  oidcIssuer: string;
  redirectUri: string;
}

/** Session cookie claims. */
interface Session {
  sid: string;
  iss: string;
  org: string;
  sub?: string;
  fhirUser?: string;
  /** The episodes this viewer may see: tenant and episode key. */
  eps: { t: string; k: string }[];
}

class Refusal extends Error {
  readonly reason: Reason;
  /** For the audit: what happened, in words without personal data. */
  readonly detail: string;
  // Plain fields, not parameter properties: Node's type stripping runs this file as it is.
  constructor(reason: Reason, detail: string) {
    super(detail);
    this.reason = reason;
    this.detail = detail;
  }
}

/** An endpoint the EHR advertises: https, or http on loopback (the local sandbox). */
function endpoint(v: unknown): string | undefined {
  if (typeof v !== 'string') return undefined;
  try {
    const u = new URL(v);
    if (u.username || u.password || u.hash) return undefined;
    return u.protocol === 'https:' || (u.protocol === 'http:' && LOOPBACK.test(u.hostname)) ? u.href : undefined;
  } catch {
    return undefined;
  }
}

const random = (bytes = 32): string => base64url.encode(crypto.getRandomValues(new Uint8Array(bytes)));

async function s256(verifier: string): Promise<string> {
  return base64url.encode(new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier))));
}

const PURPOSE = { pre: 'imh-bridge/smart-launch', session: 'imh-bridge/smart-session' } as const;

async function seal(key: Uint8Array, purpose: keyof typeof PURPOSE, claims: object, now: number, seconds: number): Promise<string> {
  return new EncryptJWT({ ...claims } as JWTPayload)
    .setProtectedHeader({ alg: 'dir', enc: 'A256GCM' })
    .setAudience(PURPOSE[purpose])
    .setIssuedAt(Math.floor(now / 1000))
    .setExpirationTime(Math.floor(now / 1000) + seconds)
    .encrypt(key);
}

async function unseal<T>(key: Uint8Array, purpose: keyof typeof PURPOSE, token: string | undefined, now: number): Promise<T | undefined> {
  if (!token) return undefined;
  try {
    const { payload } = await jwtDecrypt(token, key, {
      audience: PURPOSE[purpose],
      currentDate: new Date(now),
      keyManagementAlgorithms: ['dir'],
      contentEncryptionAlgorithms: ['A256GCM'],
      requiredClaims: ['exp'],
    });
    return payload as T;
  } catch {
    return undefined;
  }
}

/** The gate of a stored episode for the EHR's organisation at `at`, as a refusal reason or undefined when it may be shown. */
function refusalOf(e: Episode, orgNumber: string, at: string): { reason: Reason; detail: string } | undefined {
  if (e.primaryTreatment?.organization.orgNumber !== orgNumber)
    return { reason: 'no-summary', detail: 'the episode names another primary treatment organisation' };
  const gate = evaluateGate(e, at, () => true);
  if (!gate.open) {
    const reason: Reason = gate.reason === 'consent-withdrawn' ? 'consent-withdrawn' : gate.reason === 'consent-expired' ? 'consent-expired' : 'consent-other';
    return { reason, detail: gate.text };
  }
  if (!gate.share.has('summary')) return { reason: 'consent-other', detail: 'the consent does not include the coordination summary' };
  return undefined;
}

/** The SMART routes, to be mounted at `/smart` ahead of the API's caller authentication. */
export function smartRoutes(deps: SmartDeps): Hono {
  const app = new Hono();
  const now = deps.now ?? Date.now;
  const doFetch = deps.fetch ?? ((...a: Parameters<typeof fetch>) => fetch(...a));
  const issuerOf = (iss: string | undefined) => (iss ? deps.issuers.find((i) => i.iss === iss.replace(/\/+$/, '')) : undefined);

  const headers = (c: Context, issuer?: SmartIssuer) => {
    const ancestors = issuer?.frameAncestors.length ? issuer.frameAncestors.join(' ') : "'none'";
    c.header('content-security-policy', `${SUMMARY_PAGE_CSP}; frame-ancestors ${ancestors}; form-action 'none'; base-uri 'none'`);
    c.header('cache-control', 'no-store');
    c.header('referrer-policy', 'no-referrer');
    c.header('x-content-type-options', 'nosniff');
  };

  const audit = async (event: AuditEvent): Promise<boolean> => {
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        await deps.audit(event);
        return true;
      } catch (e) {
        // Name and status only: the request carried patient data.
        const status = (e as { status?: unknown } | undefined)?.status;
        log('smart.audit_not_written', { error: errorKind(e), ...(typeof status === 'number' ? { httpStatus: status } : {}) });
      }
    }
    return false;
  };

  /** Audits a refusal and answers its page. */
  const refuse = async (
    c: Context,
    lang: SummaryLang,
    r: Refusal,
    ctx: { key?: string; viewer?: SummaryViewer; nationalId?: string; episodes?: Episode[]; issuer?: SmartIssuer } = {},
  ): Promise<Response> => {
    const at = new Date(now()).toISOString();
    const key = ctx.key ?? crypto.randomUUID();
    const episodes = ctx.episodes?.length ? ctx.episodes : [undefined];
    for (const [i, episode] of episodes.entries()) {
      await audit(
        summaryViewAuditEvent({
          key: `${key}|refused|${r.reason}|${i}|${at}`,
          at,
          identity: deps.identity,
          ...(ctx.viewer ? { viewer: ctx.viewer } : {}),
          ...(ctx.nationalId ? { nationalId: ctx.nationalId } : {}),
          ...(episode ? { episode } : {}),
          outcome: 'refused',
          reason: r.detail,
        }),
      );
    }
    const words = REFUSAL[r.reason];
    headers(c, ctx.issuer);
    const again =
      r.reason === 'session-ended' || r.reason === 'no-launch' || r.reason === 'bad-state' || r.reason === 'ehr-unavailable' || r.reason === 'bad-token';
    return c.html(
      page(lang, TEXT.refusedTitle[lang], `<p>${esc(words[lang])}</p>${again ? `<p>${esc(TEXT.again[lang])}</p>` : ''}<p>${esc(TEXT.contact[lang])}</p>`),
      words.status,
    );
  };

  async function getJson(url: string, init: RequestInit = {}): Promise<Record<string, unknown>> {
    const res = await doFetch(url, { ...init, redirect: 'manual', signal: AbortSignal.timeout(FETCH_TIMEOUT_MS) });
    const text = await res.text();
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    const value = JSON.parse(text) as unknown;
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error('not a JSON object');
    return value as Record<string, unknown>;
  }

  async function discover(issuer: SmartIssuer): Promise<Discovery> {
    let doc: Record<string, unknown>;
    try {
      doc = await getJson(`${issuer.iss}/.well-known/smart-configuration`, { headers: { accept: 'application/json' } });
    } catch {
      throw new Refusal('ehr-unavailable', "the EHR's SMART configuration could not be read");
    }
    const authorization_endpoint = endpoint(doc.authorization_endpoint);
    const token_endpoint = endpoint(doc.token_endpoint);
    const jwks_uri = endpoint(doc.jwks_uri);
    const methods = doc.code_challenge_methods_supported;
    if (!authorization_endpoint || !token_endpoint || !jwks_uri) {
      throw new Refusal('ehr-unavailable', "the EHR's SMART configuration lacks an authorization, token or JWKS endpoint");
    }
    if (!Array.isArray(methods) || !methods.includes('S256')) {
      throw new Refusal('ehr-unavailable', "the EHR's SMART configuration does not support PKCE S256");
    }
    return { authorization_endpoint, token_endpoint, jwks_uri, ...(typeof doc.issuer === 'string' ? { issuer: doc.issuer } : {}) };
  }

  app.get('/launch', async (c) => {
    const lang = pickLang(c.req.query('lang'), c.req.header('accept-language'));
    const iss = c.req.query('iss');
    const launch = c.req.query('launch');
    if (!iss || !launch) return refuse(c, lang, new Refusal('bad-launch', 'launch without iss or launch'));
    const issuer = issuerOf(iss);
    // The unconfigured issuer is not recorded: it is whatever the caller typed.
    if (!issuer) return refuse(c, lang, new Refusal('unknown-issuer', 'launch from an EHR that is not configured in SMART_ISSUERS'));
    let d: Discovery;
    try {
      d = await discover(issuer);
    } catch (e) {
      if (e instanceof Refusal) return refuse(c, lang, e, { viewer: { iss: issuer.iss, orgNumber: issuer.orgNumber }, issuer });
      throw e;
    }
    const redirectUri = `${new URL(c.req.url).origin}${COOKIE_PATH}/callback`;
    const pre: PreAuth = {
      iss: issuer.iss,
      state: random(),
      verifier: random(),
      nonce: random(),
      token: d.token_endpoint,
      jwks: d.jwks_uri,
      oidcIssuer: d.issuer ?? issuer.iss,
      redirectUri,
    };
    const t = now();
    setCookie(c, PRE_AUTH_COOKIE, await seal(await deps.cookieKey(), 'pre', pre, t, PRE_AUTH_SECONDS), {
      path: COOKIE_PATH,
      httpOnly: true,
      secure: true,
      sameSite: 'Lax',
      maxAge: PRE_AUTH_SECONDS,
    });
    const url = new URL(d.authorization_endpoint);
    const params = {
      response_type: 'code',
      client_id: issuer.clientId,
      redirect_uri: redirectUri,
      scope: SMART_SCOPE,
      state: pre.state,
      aud: issuer.iss,
      launch,
      nonce: pre.nonce,
      code_challenge: await s256(pre.verifier),
      code_challenge_method: 'S256',
    };
    for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
    c.header('cache-control', 'no-store');
    c.header('referrer-policy', 'no-referrer');
    return c.redirect(url.href, 302);
  });

  app.get('/callback', async (c) => {
    const lang = pickLang(c.req.query('lang'), c.req.header('accept-language'));
    const key = await deps.cookieKey();
    const pre = await unseal<PreAuth>(key, 'pre', getCookie(c, PRE_AUTH_COOKIE), now());
    // One use: whatever happens next, this launch is over.
    deleteCookie(c, PRE_AUTH_COOKIE, { path: COOKIE_PATH, secure: true });
    const issuer = issuerOf(pre?.iss);
    if (!pre || !issuer) return refuse(c, lang, new Refusal('no-launch', 'callback without a valid launch cookie (not started here, expired or altered)'));
    const base = { key: pre.state, issuer };
    const state = c.req.query('state');
    if (!state || state !== pre.state)
      return refuse(c, lang, new Refusal('bad-state', 'callback whose state does not match the launch'), {
        ...base,
        viewer: { iss: issuer.iss, orgNumber: issuer.orgNumber },
      });
    if (c.req.query('error')) {
      // The EHR's error text is not repeated: it is the EHR's to word and may name anything.
      return refuse(c, lang, new Refusal('sign-in-refused', "the EHR's authorisation server answered with an error"), {
        ...base,
        viewer: { iss: issuer.iss, orgNumber: issuer.orgNumber },
      });
    }
    const code = c.req.query('code');
    if (!code)
      return refuse(c, lang, new Refusal('bad-token', 'callback without a code'), { ...base, viewer: { iss: issuer.iss, orgNumber: issuer.orgNumber } });

    let viewer: SummaryViewer = { iss: issuer.iss, orgNumber: issuer.orgNumber };
    try {
      // Token request as a confidential client, client_secret_basic (RFC 6749 §2.3.1).
      const basic = btoa(`${encodeURIComponent(issuer.clientId)}:${encodeURIComponent(issuer.clientSecret.reveal())}`);
      let token: Record<string, unknown>;
      try {
        token = await getJson(pre.token, {
          method: 'POST',
          headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
          body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: pre.redirectUri, code_verifier: pre.verifier }).toString(),
        });
      } catch {
        throw new Refusal('bad-token', "the EHR's token endpoint refused the code");
      }
      const { access_token, token_type, id_token, patient } = token;
      if (typeof access_token !== 'string' || !access_token || typeof token_type !== 'string' || token_type.toLowerCase() !== 'bearer') {
        throw new Refusal('bad-token', 'the token response has no bearer access token');
      }
      if (typeof id_token !== 'string') throw new Refusal('bad-token', 'the token response has no id token');
      if (typeof patient !== 'string' || !FHIR_ID.test(patient)) throw new Refusal('bad-token', 'the token response has no patient in context');

      let jwks: Record<string, unknown>;
      try {
        jwks = await getJson(pre.jwks, { headers: { accept: 'application/json' } });
      } catch {
        throw new Refusal('ehr-unavailable', "the EHR's JWKS could not be read");
      }
      let claims: JWTPayload;
      try {
        ({ payload: claims } = await jwtVerify(id_token, createLocalJWKSet(jwks as never), {
          issuer: pre.oidcIssuer,
          audience: issuer.clientId,
          algorithms: ID_TOKEN_ALGS,
          currentDate: new Date(now()),
          requiredClaims: ['exp', 'iat', 'sub'],
        }));
      } catch {
        throw new Refusal('bad-token', 'the id token did not verify (signature, issuer, audience or expiry)');
      }
      if (claims.nonce !== pre.nonce) throw new Refusal('bad-token', "the id token's nonce does not match the launch");
      viewer = {
        ...viewer,
        ...(typeof claims.sub === 'string' ? { sub: claims.sub } : {}),
        ...(typeof claims.fhirUser === 'string' ? { fhirUser: claims.fhirUser } : {}),
      };

      let resource: Record<string, unknown>;
      try {
        resource = await getJson(`${issuer.iss}/Patient/${patient}`, { headers: { authorization: `Bearer ${access_token}`, accept: FHIR_JSON } });
      } catch {
        throw new Refusal('ehr-unavailable', 'the patient in context could not be read from the EHR');
      }
      const nationalId = ((resource as unknown as Patient).identifier ?? [])
        .filter((i) => (i.system === NO.fnr || i.system === NO.dnr) && typeof i.value === 'string')
        .map((i) => i.value as string)
        .find((v) => {
          const info = checkNationalId(v);
          return typeof info !== 'string' && (deps.allowSyntheticIds || !info.synthetic);
        });
      if (resource.resourceType !== 'Patient' || !nationalId) {
        throw new Refusal('no-national-id', 'the patient in context has no usable national id');
      }

      const stored = await deps.episodes().findEpisodesByPerson(personKey(deps.identity, nationalId));
      const at = new Date(now()).toISOString();
      const ours = stored.filter((s) => s.episode.primaryTreatment?.organization.orgNumber === issuer.orgNumber);
      if (!ours.length) {
        // The same page for "no episode" and "another organisation's": which is true is not the viewer's to know.
        const detail = stored.length ? "the person's episodes name another primary treatment organisation" : 'no stored episode of this person';
        return refuse(c, lang, new Refusal('no-summary', detail), { ...base, viewer, nationalId });
      }
      const allowed: StoredEpisode[] = [];
      const refused: { s: StoredEpisode; reason: Reason; detail: string }[] = [];
      for (const s of ours) {
        const r = refusalOf(s.episode, issuer.orgNumber, at);
        if (r) refused.push({ s, ...r });
        else allowed.push(s);
      }
      if (!allowed.length) {
        const first = refused[0] as (typeof refused)[number];
        return refuse(c, lang, new Refusal(first.reason, refused.map((r) => r.detail).join('; ')), {
          ...base,
          viewer,
          nationalId,
          episodes: refused.map((r) => r.s.episode),
        });
      }
      const session: Session = {
        sid: random(16),
        iss: issuer.iss,
        org: issuer.orgNumber,
        ...(viewer.sub ? { sub: viewer.sub } : {}),
        ...(viewer.fhirUser ? { fhirUser: viewer.fhirUser } : {}),
        eps: allowed.map((s) => ({ t: s.tenant, k: s.episodeKey })),
      };
      setCookie(c, SESSION_COOKIE, await seal(key, 'session', session, now(), SESSION_SECONDS), {
        path: COOKIE_PATH,
        httpOnly: true,
        secure: true,
        sameSite: 'Lax',
        maxAge: SESSION_SECONDS,
      });
      c.header('cache-control', 'no-store');
      c.header('referrer-policy', 'no-referrer');
      return c.redirect(`${COOKIE_PATH}/summary${c.req.query('lang') ? `?lang=${lang}` : ''}`, 303);
    } catch (e) {
      if (e instanceof Refusal) return refuse(c, lang, e, { ...base, viewer });
      throw e;
    }
  });

  app.get('/summary', async (c) => {
    const lang = pickLang(c.req.query('lang'), c.req.header('accept-language'));
    const session = await unseal<Session>(await deps.cookieKey(), 'session', getCookie(c, SESSION_COOKIE), now());
    const issuer = issuerOf(session?.iss);
    if (!session || !issuer || issuer.orgNumber !== session.org || !Array.isArray(session.eps)) {
      return refuse(c, lang, new Refusal('session-ended', 'summary requested without a valid session (none, expired or altered)'));
    }
    const viewer: SummaryViewer = {
      iss: session.iss,
      orgNumber: session.org,
      ...(session.sub ? { sub: session.sub } : {}),
      ...(session.fhirUser ? { fhirUser: session.fhirUser } : {}),
    };
    const store = deps.episodes();
    const langQuery = c.req.query('lang') ? `&lang=${lang}` : '';
    const e = c.req.query('e');
    if (e === undefined && session.eps.length > 1) {
      const items: string[] = [];
      for (const [i, ref] of session.eps.entries()) {
        const s = await store.getEpisode(ref.t, ref.k);
        if (!s) continue;
        const start = s.episode.period?.start;
        items.push(
          `<li><a href="${COOKIE_PATH}/summary?e=${i}${langQuery}">${esc(s.episode.clinic.name)}${start ? `, ${TEXT.started[lang]} ${esc(formatDate(start, lang))}` : ''}</a></li>`,
        );
      }
      headers(c, issuer);
      return c.html(page(lang, TEXT.listTitle[lang], `<p>${esc(TEXT.listIntro[lang])}</p><ul>${items.join('')}</ul>`));
    }
    const index = e === undefined ? 0 : /^\d{1,3}$/.test(e) ? Number(e) : -1;
    const ref = session.eps[index];
    if (!ref) return refuse(c, lang, new Refusal('no-summary', 'summary requested for an episode outside the session'), { key: session.sid, viewer, issuer });
    const stored = await store.getEpisode(ref.t, ref.k);
    const at = new Date(now()).toISOString();
    if (!stored) return refuse(c, lang, new Refusal('no-summary', 'the episode is no longer stored'), { key: session.sid, viewer, issuer });
    const episode = stored.episode;
    // Again at every view: a consent withdrawn during the session ends it for this episode.
    const r = refusalOf(episode, session.org, at);
    if (r)
      return refuse(c, lang, new Refusal(r.reason, r.detail), { key: session.sid, viewer, issuer, nationalId: episode.parent.nationalId, episodes: [episode] });
    let html: string;
    try {
      html = renderSummaryPage(episode, { at, lang, identity: deps.identity });
    } catch (err) {
      if (isOperationOutcomeError(err) && err.status === 403) {
        return refuse(c, lang, new Refusal('consent-other', 'the consent refuses the summary'), {
          key: session.sid,
          viewer,
          issuer,
          nationalId: episode.parent.nationalId,
          episodes: [episode],
        });
      }
      throw err;
    }
    const written = await audit(
      summaryViewAuditEvent({
        key: `${session.sid}|${ref.t}|${ref.k}|${at}`,
        at,
        identity: deps.identity,
        viewer,
        nationalId: episode.parent.nationalId,
        episode,
        outcome: 'success',
      }),
    );
    if (!written) {
      const words = REFUSAL['audit-unavailable'];
      headers(c, issuer);
      c.header('retry-after', '30');
      return c.html(page(lang, TEXT.refusedTitle[lang], `<p>${esc(words[lang])}</p>`), words.status);
    }
    headers(c, issuer);
    return c.html(html);
  });

  return app;
}
