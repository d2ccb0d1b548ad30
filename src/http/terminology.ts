/**
 * The bridge's own terminology (mappings/CodeSystem-*.json, mappings/ValueSet-*.json), served
 * read-only at /v1/CodeSystem and /v1/ValueSet so that a form renderer or a FHIR client can
 * look up every code the bridge writes without a terminology server. ValueSets are served
 * expanded (R4 ValueSet.expansion, https://hl7.org/fhir/R4/valueset.html#expansion): every
 * one of ours includes whole CodeSystems of ours, so the expansion is computed here.
 */
import type { CodeSystem, CodeSystemConcept, ValueSet, ValueSetExpansionContains } from '@medplum/fhirtypes';
import { Hono } from 'hono';
import csAnswerPosition from '../../mappings/CodeSystem-answer-position.json' with { type: 'json' };
import csCancellationReason from '../../mappings/CodeSystem-cancellation-reason.json' with { type: 'json' };
import csChangeClassification from '../../mappings/CodeSystem-change-classification.json' with { type: 'json' };
import csChangeProcessTheme from '../../mappings/CodeSystem-change-process-theme.json' with { type: 'json' };
import csClipType from '../../mappings/CodeSystem-clip-type.json' with { type: 'json' };
import csClosingReason from '../../mappings/CodeSystem-closing-reason.json' with { type: 'json' };
import csConsentShareClass from '../../mappings/CodeSystem-consent-share-class.json' with { type: 'json' };
import csConsentStatus from '../../mappings/CodeSystem-consent-status.json' with { type: 'json' };
import csCoordinationRequest from '../../mappings/CodeSystem-coordination-request.json' with { type: 'json' };
import csEpisodeStatus from '../../mappings/CodeSystem-episode-status.json' with { type: 'json' };
import csGoalStatus from '../../mappings/CodeSystem-goal-status.json' with { type: 'json' };
import csInstrumentItem from '../../mappings/CodeSystem-instrument-item.json' with { type: 'json' };
import csInstrumentScore from '../../mappings/CodeSystem-instrument-score.json' with { type: 'json' };
import csMarteMeoFocusElement from '../../mappings/CodeSystem-marte-meo-focus-element.json' with { type: 'json' };
import csParentRelationship from '../../mappings/CodeSystem-parent-relationship.json' with { type: 'json' };
import csPrfqAgreement from '../../mappings/CodeSystem-prfq-agreement.json' with { type: 'json' };
import csProfession from '../../mappings/CodeSystem-profession.json' with { type: 'json' };
import csReferralSource from '../../mappings/CodeSystem-referral-source.json' with { type: 'json' };
import csRiskFlag from '../../mappings/CodeSystem-risk-flag.json' with { type: 'json' };
import csScoreBand from '../../mappings/CodeSystem-score-band.json' with { type: 'json' };
import csSessionAttendance from '../../mappings/CodeSystem-session-attendance.json' with { type: 'json' };
import csSessionKind from '../../mappings/CodeSystem-session-kind.json' with { type: 'json' };
import csSessionReviewItem from '../../mappings/CodeSystem-session-review-item.json' with { type: 'json' };
import csSessionSetting from '../../mappings/CodeSystem-session-setting.json' with { type: 'json' };
import csVideoGuidanceMethod from '../../mappings/CodeSystem-video-guidance-method.json' with { type: 'json' };
import vsAnswerPosition from '../../mappings/ValueSet-answer-position.json' with { type: 'json' };
import vsCancellationReason from '../../mappings/ValueSet-cancellation-reason.json' with { type: 'json' };
import vsChangeClassification from '../../mappings/ValueSet-change-classification.json' with { type: 'json' };
import vsChangeProcessTheme from '../../mappings/ValueSet-change-process-theme.json' with { type: 'json' };
import vsClipType from '../../mappings/ValueSet-clip-type.json' with { type: 'json' };
import vsClosingReason from '../../mappings/ValueSet-closing-reason.json' with { type: 'json' };
import vsConsentShareClass from '../../mappings/ValueSet-consent-share-class.json' with { type: 'json' };
import vsConsentStatus from '../../mappings/ValueSet-consent-status.json' with { type: 'json' };
import vsCoordinationRequest from '../../mappings/ValueSet-coordination-request.json' with { type: 'json' };
import vsEpisodeStatus from '../../mappings/ValueSet-episode-status.json' with { type: 'json' };
import vsGoalStatus from '../../mappings/ValueSet-goal-status.json' with { type: 'json' };
import vsInstrumentItem from '../../mappings/ValueSet-instrument-item.json' with { type: 'json' };
import vsInstrumentScore from '../../mappings/ValueSet-instrument-score.json' with { type: 'json' };
import vsMarteMeoFocusElement from '../../mappings/ValueSet-marte-meo-focus-element.json' with { type: 'json' };
import vsParentRelationship from '../../mappings/ValueSet-parent-relationship.json' with { type: 'json' };
import vsPrfqAgreement from '../../mappings/ValueSet-prfq-agreement.json' with { type: 'json' };
import vsProfession from '../../mappings/ValueSet-profession.json' with { type: 'json' };
import vsReferralSource from '../../mappings/ValueSet-referral-source.json' with { type: 'json' };
import vsRiskFlag from '../../mappings/ValueSet-risk-flag.json' with { type: 'json' };
import vsScoreBand from '../../mappings/ValueSet-score-band.json' with { type: 'json' };
import vsSessionAttendance from '../../mappings/ValueSet-session-attendance.json' with { type: 'json' };
import vsSessionKind from '../../mappings/ValueSet-session-kind.json' with { type: 'json' };
import vsSessionReviewItem from '../../mappings/ValueSet-session-review-item.json' with { type: 'json' };
import vsSessionSetting from '../../mappings/ValueSet-session-setting.json' with { type: 'json' };
import vsVideoGuidanceMethod from '../../mappings/ValueSet-video-guidance-method.json' with { type: 'json' };
import { fhirJson, outcomeResponse } from './errors.ts';

const CODE_SYSTEMS = [
  csAnswerPosition,
  csCancellationReason,
  csChangeClassification,
  csChangeProcessTheme,
  csClipType,
  csClosingReason,
  csConsentShareClass,
  csCoordinationRequest,
  csConsentStatus,
  csEpisodeStatus,
  csGoalStatus,
  csInstrumentItem,
  csInstrumentScore,
  csMarteMeoFocusElement,
  csParentRelationship,
  csPrfqAgreement,
  csProfession,
  csReferralSource,
  csRiskFlag,
  csScoreBand,
  csSessionAttendance,
  csSessionKind,
  csSessionReviewItem,
  csSessionSetting,
  csVideoGuidanceMethod,
] as unknown as CodeSystem[];
const VALUE_SETS = [
  vsAnswerPosition,
  vsCancellationReason,
  vsChangeClassification,
  vsChangeProcessTheme,
  vsClipType,
  vsClosingReason,
  vsConsentShareClass,
  vsCoordinationRequest,
  vsConsentStatus,
  vsEpisodeStatus,
  vsGoalStatus,
  vsInstrumentItem,
  vsInstrumentScore,
  vsMarteMeoFocusElement,
  vsParentRelationship,
  vsPrfqAgreement,
  vsProfession,
  vsReferralSource,
  vsRiskFlag,
  vsScoreBand,
  vsSessionAttendance,
  vsSessionKind,
  vsSessionReviewItem,
  vsSessionSetting,
  vsVideoGuidanceMethod,
] as unknown as ValueSet[];

/** Fixed, so that the same release answers with the same bytes (R4 requires expansion.timestamp). */
const EXPANSION_TIMESTAMP = '2026-11-26T00:00:00Z';

const codeSystemsByUrl = new Map(CODE_SYSTEMS.map((cs) => [cs.url as string, cs]));

function flatten(system: string, version: string | undefined, concepts: CodeSystemConcept[] | undefined, out: ValueSetExpansionContains[]): void {
  for (const c of concepts ?? []) {
    out.push({ system, ...(version ? { version } : {}), code: c.code, ...(c.display ? { display: c.display } : {}) });
    flatten(system, version, c.concept, out);
  }
}

/** The ValueSet with its expansion; throws when it includes something other than our CodeSystems (a build error). */
function expanded(vs: ValueSet): ValueSet {
  const contains: ValueSetExpansionContains[] = [];
  for (const inc of vs.compose?.include ?? []) {
    const cs = inc.system ? codeSystemsByUrl.get(inc.system) : undefined;
    if (!cs || inc.filter || inc.valueSet) throw new Error(`ValueSet ${vs.id}: only whole CodeSystems of the bridge can be expanded here`);
    const all: ValueSetExpansionContains[] = [];
    flatten(cs.url as string, cs.version, cs.concept, all);
    const wanted = inc.concept?.map((c) => c.code);
    contains.push(...(wanted ? all.filter((c) => wanted.includes(c.code as string)) : all));
  }
  return { ...vs, expansion: { timestamp: EXPANSION_TIMESTAMP, total: contains.length, contains } };
}

const codeSystemsById = new Map(CODE_SYSTEMS.map((cs) => [cs.id as string, cs]));
const valueSetsById = new Map(VALUE_SETS.map((vs) => [vs.id as string, expanded(vs)]));

/** Our CodeSystem with this id, as published; undefined if there is none. */
export const codeSystem = (id: string): CodeSystem | undefined => codeSystemsById.get(id);
/** Our ValueSet with this id, with its expansion; undefined if there is none. */
export const valueSet = (id: string): ValueSet | undefined => valueSetsById.get(id);
/** Ids of every CodeSystem and ValueSet served. */
export const TERMINOLOGY_IDS = { CodeSystem: [...codeSystemsById.keys()], ValueSet: [...valueSetsById.keys()] };

const searchset = (resources: (CodeSystem | ValueSet)[]) => ({
  resourceType: 'Bundle',
  type: 'searchset',
  total: resources.length,
  entry: resources.map((r) => ({ fullUrl: r.url, resource: r, search: { mode: 'match' } })),
});

/** GET /CodeSystem, /CodeSystem/:id, /ValueSet, /ValueSet/:id (mounted under /v1). */
export function terminologyRoutes<E extends { Variables: object }>(): Hono<E> {
  const app = new Hono<E>();
  app.get('/CodeSystem', (c) => fhirJson(c, searchset([...codeSystemsById.values()])));
  app.get('/ValueSet', (c) => fhirJson(c, searchset([...valueSetsById.values()])));
  app.get('/CodeSystem/:id', (c) => {
    const cs = codeSystem(c.req.param('id'));
    return cs ? fhirJson(c, cs) : outcomeResponse(c, 404, 'not-found', 'no such CodeSystem; GET /v1/CodeSystem lists them');
  });
  app.get('/ValueSet/:id', (c) => {
    const vs = valueSet(c.req.param('id'));
    return vs ? fhirJson(c, vs) : outcomeResponse(c, 404, 'not-found', 'no such ValueSet; GET /v1/ValueSet lists them');
  });
  return app;
}
