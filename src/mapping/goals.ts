/** Goals, and the clinician's global improvement rating at closing. */
import type { Coding, Goal, Observation } from '@medplum/fhirtypes';
import type { Ref } from '../fhir/bundle-scope.ts';
import { coding, translateTo } from '../fhir/terminology.ts';
import type { MappingContext } from './context.ts';

const GOAL_STATUS = 'http://hl7.org/fhir/goal-status';
const GOAL_ACHIEVEMENT = 'http://terminology.hl7.org/CodeSystem/goal-achievement';

export function mapGoals(ctx: MappingContext, parent: Ref, therapist?: Ref): void {
  for (const g of ctx.episode.goals ?? []) {
    const identifier = ctx.episodeId('goal', g.goalId);
    let achievement: Coding | undefined;
    try {
      achievement = translateTo('goal-status-to-fhir', g.status, GOAL_ACHIEVEMENT);
    } catch {
      achievement = undefined; // proposed and cancelled goals have no achievement status
    }
    ctx.add<Goal>(
      {
        resourceType: 'Goal',
        identifier: [identifier],
        lifecycleStatus: translateTo('goal-status-to-fhir', g.status, GOAL_STATUS).code as Goal['lifecycleStatus'],
        achievementStatus: achievement ? { coding: [achievement] } : undefined,
        description: { text: g.description },
        subject: parent,
        startDate: g.startOn,
        statusDate: g.statusOn,
        expressedBy: therapist,
      },
      { profile: 'imh-goal', identifier, clinical: true },
    );
  }
}

export function mapClinicianGlobalImprovement(ctx: MappingContext, parent: Ref, therapist?: Ref): void {
  const c = ctx.episode.closing;
  if (c?.clinicianGlobalImprovement === undefined) return;
  const identifier = ctx.episodeId('score', 'closing', 'cgi-i');
  ctx.add<Observation>(
    {
      resourceType: 'Observation',
      identifier: [identifier],
      status: 'final',
      category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'survey', display: 'Survey' }] }],
      code: { coding: [coding('instrument-score', 'cgi-i')] },
      subject: parent,
      effectiveDateTime: c.closedOn,
      performer: therapist ? [therapist] : undefined,
      valueInteger: c.clinicianGlobalImprovement,
    },
    { profile: 'imh-cgi-i-observation', identifier, clinical: true },
  );
}
