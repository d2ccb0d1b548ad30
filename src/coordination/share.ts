/**
 * What crosses to the parent's primary treatment team: one pure function, the only way anything
 * reaches a primary treatment server (shared contract `sharing.md`). The episode, the time of
 * sending and which organisations have a configured target go in; the Bundle for the primary
 * team's server comes out:
 *
 * - gate open: a transaction Bundle of exactly what the consent covers (the parent, the clinic,
 *   the therapist as contact, the episode, the Consent, Provenance; then attendance, focus areas,
 *   themes, scores with their change over time, risk flags, as `consent.share` says; the
 *   coordination summary as a DocumentReference once the episode has ended, when `summary` is
 *   shared) and the coordination requests (Task) the contract calls for;
 * - gate closed after a consent that was active (withdrawn, expired): a batch Bundle that only
 *   cancels the bridge's own requests that are still `requested` (JSON Patch with a `test` on the
 *   status, so a request the primary team has acted on is never touched);
 * - otherwise: a batch Bundle with no entries.
 *
 * What never crosses — session notes, anything about video clips, item answers, the referral,
 * the infants' ids and birth dates, the parent's phone, the primary team's own conditions — is
 * simply never read here.
 */
import type { Bundle, BundleEntry } from '@medplum/fhirtypes';
import type { Episode } from '../domain/episode.ts';
import { type ParseOptions, parseEpisode } from '../domain/parse.ts';
import { keyedUuid } from '../fhir/bundle-scope.ts';
import { DEV_IDENTITY, type IdentityOptions } from '../fhir/identity.ts';
import { isOperationOutcomeError } from '../fhir/outcome.ts';
import { identifierQuery } from '../fhir/write-semantics.ts';
import { selfHarmAssessments } from '../mapping/assessments.ts';
import { addBridgeDevice, addProvenance } from '../mapping/bundle.ts';
import { MappingContext } from '../mapping/context.ts';
import { base64Utf8 } from '../mapping/sessions.ts';
import { evaluateGate, type Gate, type ShareClass } from './gate.ts';
import { ended, primaryContent, requestIdentifier } from './primary-content.ts';
import { buildSummary } from './summary.ts';

export interface ShareOptions extends ParseOptions {
  /** The moment of sending (ISO 8601): the gate is evaluated then. */
  at: string;
  /** Whether a primary target is configured for an organisation number. */
  hasTarget: (orgNumber: string) => boolean;
  /** The deployment's identifier namespace and pseudonym secret. */
  identity?: IdentityOptions;
  /**
   * The coordination summary document to deliver once the episode has ended (`summaryToDeliver`,
   * signed by the delivery layer where the bridge has a key: signing is asynchronous and needs the
   * key, so it happens outside this pure function). Absent: the unsigned document is built here.
   */
  summary?: Bundle;
}

export interface PrimaryShare {
  gate: Gate;
  /** What the primary team's server receives for this send (see the module comment). */
  bundle: Bundle;
}

/**
 * The moment a delivered summary speaks for: the latest dated fact of the episode that the
 * summary may show (sessions held, assessments, goals, the consent, the closing, the period).
 * Not the clock: the same episode gives the same document, so a re-send delivers nothing new, and
 * not `asOf` of the mapping, which also counts video clips' recording times (they never cross).
 */
export function summaryAsOf(e: Episode): string {
  const stamps: string[] = [e.referral.receivedOn];
  if (e.period) stamps.push(e.period.start, ...(e.period.end ? [e.period.end] : []));
  for (const s of e.sessions ?? []) if (s.status !== 'planned') stamps.push(s.start);
  for (const a of e.assessments ?? []) stamps.push(a.completedOn);
  for (const g of e.goals ?? []) stamps.push(g.statusOn);
  if (e.consent) stamps.push(e.consent.decidedOn);
  if (e.closing) stamps.push(e.closing.closedOn);
  return new Date(Math.max(...stamps.map((s) => Date.parse(s.length === 10 ? `${s}T00:00:00Z` : s)))).toISOString();
}

/**
 * The coordination summary to deliver to the primary team for this episode (contract
 * `sharing.md`: "summary", and the request "the episode has ended; focus is the summary"): the
 * document in Norwegian bokmål as of `summaryAsOf`, once the episode is finished or cancelled and
 * the gate at `opts.at` is open with `summary` shared; undefined otherwise (also when the consent
 * did not yet hold at the episode's latest fact, so that no document claims a consent it lacked).
 */
export function summaryToDeliver(e: Episode, opts: Pick<ShareOptions, 'at' | 'hasTarget' | 'identity'>): Bundle | undefined {
  const gate = evaluateGate(e, opts.at, opts.hasTarget);
  if (!gate.open || !gate.share.has('summary') || !ended(e)) return undefined;
  try {
    return buildSummary(e, { at: summaryAsOf(e), lang: 'nb', identity: opts.identity ?? DEV_IDENTITY, hasTarget: opts.hasTarget });
  } catch (err) {
    if (isOperationOutcomeError(err)) return undefined;
    throw err;
  }
}

/** Everything the open gate lets cross, with what was sent by whom. */
function openBundle(e: Episode, share: ReadonlySet<ShareClass>, primaryOrgNumber: string, identity: IdentityOptions, summary: Bundle | undefined): Bundle {
  const { ctx, clinic } = primaryContent(e, share, identity, summary);

  // What was sent, by whom: the bridge assembled it for the clinic.
  const device = addBridgeDevice(ctx);
  addProvenance(ctx, { device, clinic, key: `${e.clinic.orgNumber}|${e.episodeId}|primary|${primaryOrgNumber}` });
  return { resourceType: 'Bundle', type: 'transaction', entry: ctx.list() };
}

/**
 * Cancels the bridge's own requests that are still open on the primary server: a batch (each
 * entry stands alone) of conditional JSON Patches whose `test` lets only a `requested` Task
 * change (https://hl7.org/fhir/R4/http.html#patch; a JSON Patch travels in a transaction or
 * batch as a Binary).
 */
function cancellations(e: Episode, reason: string, identity: IdentityOptions): Bundle {
  const ctx = new MappingContext(e, identity);
  const ids = [
    requestIdentifier(ctx, 'guidance-started'),
    ...selfHarmAssessments(e).map((a) => requestIdentifier(ctx, 'risk-follow-up', a.assessmentId)),
    requestIdentifier(ctx, 'guidance-ended'),
  ];
  const patch = [
    { op: 'test', path: '/status', value: 'requested' },
    { op: 'replace', path: '/status', value: 'cancelled' },
    { op: 'add', path: '/statusReason', value: { text: `Cancelled by the infant mental health clinic: ${reason}.` } },
  ];
  const entry: BundleEntry[] = ids.map((identifier) => ({
    fullUrl: `urn:uuid:${keyedUuid(identity, `cancel|Task|${identifier.system}|${identifier.value}`)}`,
    resource: { resourceType: 'Binary', contentType: 'application/json-patch+json', data: base64Utf8(JSON.stringify(patch)) },
    request: { method: 'PATCH', url: `Task?${identifierQuery(identifier)}` },
  }));
  return { resourceType: 'Bundle', type: 'batch', entry };
}

/** Decides what crosses for a parsed episode (see the module comment). */
export function sharePrimaryParsed(e: Episode, opts: ShareOptions): PrimaryShare {
  const identity = opts.identity ?? DEV_IDENTITY;
  const gate = evaluateGate(e, opts.at, opts.hasTarget);
  if (gate.open) return { gate, bundle: openBundle(e, gate.share, gate.orgNumber, identity, opts.summary ?? summaryToDeliver(e, { ...opts, identity })) };
  // A consent that once let requests through now stops them: cancel what is still open there.
  const once = gate.reason === 'consent-withdrawn' || gate.reason === 'consent-expired';
  if (once && gate.orgNumber && opts.hasTarget(gate.orgNumber)) return { gate, bundle: cancellations(e, gate.text, identity) };
  return { gate, bundle: { resourceType: 'Bundle', type: 'batch', entry: [] } };
}

/** Validates an episode and decides what crosses. Throws the OperationOutcomeError of a bad episode. */
export function sharePrimary(input: unknown, opts: ShareOptions): PrimaryShare {
  return sharePrimaryParsed(parseEpisode(input, opts), opts);
}
