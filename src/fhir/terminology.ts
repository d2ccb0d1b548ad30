/**
 * Terminology lives in data: our CodeSystems and ConceptMaps are FHIR JSON in `mappings/`.
 * Code asks this module for a Coding by `CodeSystem id + code`, or translates through a
 * ConceptMap; an unknown code is a programming error and throws.
 */
import type { CodeSystem, Coding, ConceptMap } from '@medplum/fhirtypes';
import cancellationReason from '../../mappings/CodeSystem-cancellation-reason.json' with { type: 'json' };
import changeTheme from '../../mappings/CodeSystem-change-process-theme.json' with { type: 'json' };
import clipType from '../../mappings/CodeSystem-clip-type.json' with { type: 'json' };
import closingReason from '../../mappings/CodeSystem-closing-reason.json' with { type: 'json' };
import consentShareClass from '../../mappings/CodeSystem-consent-share-class.json' with { type: 'json' };
import coordinationRequest from '../../mappings/CodeSystem-coordination-request.json' with { type: 'json' };
import instrumentScore from '../../mappings/CodeSystem-instrument-score.json' with { type: 'json' };
import focusElement from '../../mappings/CodeSystem-marte-meo-focus-element.json' with { type: 'json' };
import parentRelationship from '../../mappings/CodeSystem-parent-relationship.json' with { type: 'json' };
import profession from '../../mappings/CodeSystem-profession.json' with { type: 'json' };
import referralSource from '../../mappings/CodeSystem-referral-source.json' with { type: 'json' };
import riskFlag from '../../mappings/CodeSystem-risk-flag.json' with { type: 'json' };
import scoreBand from '../../mappings/CodeSystem-score-band.json' with { type: 'json' };
import sessionAttendance from '../../mappings/CodeSystem-session-attendance.json' with { type: 'json' };
import sessionKind from '../../mappings/CodeSystem-session-kind.json' with { type: 'json' };
import sessionSetting from '../../mappings/CodeSystem-session-setting.json' with { type: 'json' };
import videoGuidanceMethod from '../../mappings/CodeSystem-video-guidance-method.json' with { type: 'json' };
import consentStatusMap from '../../mappings/ConceptMap-consent-status-to-fhir.json' with { type: 'json' };
import episodeStatusMap from '../../mappings/ConceptMap-episode-status-to-fhir.json' with { type: 'json' };
import goalStatusMap from '../../mappings/ConceptMap-goal-status-to-fhir.json' with { type: 'json' };
import relationshipMap from '../../mappings/ConceptMap-parent-relationship-to-v3-rolecode.json' with { type: 'json' };
import attendanceMap from '../../mappings/ConceptMap-session-attendance-to-encounter-status.json' with { type: 'json' };
import settingMap from '../../mappings/ConceptMap-session-setting-to-encounter-class.json' with { type: 'json' };

const codeSystems = [
  videoGuidanceMethod,
  referralSource,
  sessionKind,
  sessionAttendance,
  sessionSetting,
  cancellationReason,
  focusElement,
  changeTheme,
  clipType,
  instrumentScore,
  scoreBand,
  riskFlag,
  closingReason,
  parentRelationship,
  profession,
  consentShareClass,
  coordinationRequest,
] as unknown as CodeSystem[];

const conceptMaps = [relationshipMap, settingMap, attendanceMap, goalStatusMap, consentStatusMap, episodeStatusMap] as unknown as ConceptMap[];

const byId = new Map(codeSystems.map((cs) => [cs.id as string, cs]));
const mapsById = new Map(conceptMaps.map((cm) => [cm.id as string, cm]));

/** The Coding for `code` in our CodeSystem `codeSystemId`, display taken from the CodeSystem. */
export function coding(codeSystemId: string, code: string): Coding {
  const cs = byId.get(codeSystemId);
  if (!cs) throw new Error(`unknown CodeSystem ${codeSystemId}`);
  const concept = cs.concept?.find((c) => c.code === code);
  if (!concept) throw new Error(`code ${code} is not in CodeSystem ${codeSystemId}`);
  return { system: cs.url as string, code, ...(concept.display ? { display: concept.display } : {}) };
}

/**
 * Translates `code` through ConceptMap `conceptMapId`. Returns the target Codings, one per
 * group that maps it (a ConceptMap may map one source into several target systems).
 */
export function translate(conceptMapId: string, code: string): Coding[] {
  const cm = mapsById.get(conceptMapId);
  if (!cm) throw new Error(`unknown ConceptMap ${conceptMapId}`);
  const out: Coding[] = [];
  for (const group of cm.group ?? []) {
    for (const el of group.element ?? []) {
      if (el.code !== code) continue;
      for (const t of el.target ?? []) {
        if (t.equivalence === 'unmatched' || t.equivalence === 'disjoint' || !t.code) continue;
        out.push({ system: group.target as string, code: t.code, ...(t.display ? { display: t.display } : {}) });
      }
    }
  }
  if (!out.length) throw new Error(`ConceptMap ${conceptMapId} does not map ${code}`);
  return out;
}

/** The single target code in `targetSystem` for `code`. */
export function translateTo(conceptMapId: string, code: string, targetSystem: string): Coding {
  const hit = translate(conceptMapId, code).find((c) => c.system === targetSystem);
  if (!hit) throw new Error(`ConceptMap ${conceptMapId} does not map ${code} to ${targetSystem}`);
  return hit;
}
