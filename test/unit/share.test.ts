/**
 * What crosses to the primary treatment team (shared contract sharing.md): the consent matrix,
 * the gate by date, target and organisation, the coordination requests, and a scan of the whole
 * output for everything that must never cross.
 */
import type { AuditEvent, Bundle, Task } from '@medplum/fhirtypes';
import { describe, expect, it } from 'vitest';
import { disclosureAuditEvent } from '../../src/coordination/audit.ts';
import { clinicSharing, evaluateGate, SHARE_CLASSES, type ShareClass } from '../../src/coordination/gate.ts';
import { nextDay } from '../../src/coordination/primary-content.ts';
import { sharePrimary, sharePrimaryParsed } from '../../src/coordination/share.ts';
import { parseEpisode } from '../../src/domain/parse.ts';
import { DEV_IDENTITY } from '../../src/fhir/identity.ts';
import { validateFhir } from '../../src/fhir/validate.ts';
import { isMasterData } from '../../src/fhir/write-semantics.ts';
import { mapParsedEpisode } from '../../src/mapping/bundle.ts';
import { type AnyResource, byIdentifier, resolve, resources } from '../fixtures/bundle.ts';
import { activeFather, completed, plannedMinimal } from '../fixtures/examples.ts';
import { leaks } from '../fixtures/leaks.ts';
import { r4InvariantFailures, r4SchemaErrors } from '../fixtures/r4-independent.ts';

const AT = '2026-05-10T10:00:00Z';
const anyTarget = () => true;
const STATUSES = ['active', 'declined', 'withdrawn', 'expired'] as const;

/** Every subset of the share classes (64). */
const subsets = (): ShareClass[][] => {
  const out: ShareClass[][] = [];
  for (let m = 0; m < 1 << SHARE_CLASSES.length; m++) out.push(SHARE_CLASSES.filter((_, i) => m & (1 << i)));
  return out;
};

/** The examples that name a primary treatment organisation, with a risk on the mother's PHQ-9 and the father's EPDS. */
const examples = (): [string, AnyResource][] => {
  const mother = completed();
  mother.assessments[1].answers['9'] = 1; // PHQ-9 A2: positive self-harm item
  return [
    ['completed mother', mother],
    ['active father', activeFather()], // EPDS item 10 positive already
  ];
};

const withConsent = (e: AnyResource, status: (typeof STATUSES)[number], share: ShareClass[]) => {
  const x = structuredClone(e);
  x.consent = { consentId: 'CN-TEST', status, decidedOn: '2026-01-12', expiresOn: '2027-01-12', recipient: 'primary-treatment', share };
  return x;
};

const types = (b: Bundle): Set<string> => new Set((b.entry ?? []).map((e) => e.resource?.resourceType as string));
const tasks = (b: Bundle): Task[] => resources(b, 'Task') as Task[];
const taskCodes = (b: Bundle): string[] =>
  tasks(b)
    .map((t) => t.code?.coding?.[0]?.code as string)
    .sort();

describe('the gate', () => {
  const mother = parseEpisode(completed());
  it('opens with an active consent decided by now and not expired, a primary organisation and its target', () => {
    expect(evaluateGate(mother, AT, anyTarget)).toMatchObject({ open: true, orgNumber: '993778125' });
  });
  it('closes on the day the consent expires, and before the day it was decided', () => {
    expect(evaluateGate(mother, '2027-01-11T23:59:59Z', anyTarget).open).toBe(true);
    expect(evaluateGate(mother, '2027-01-12T00:00:00Z', anyTarget)).toMatchObject({ open: false, reason: 'consent-expired' });
    expect(evaluateGate(mother, '2026-01-12T08:00:00Z', anyTarget).open).toBe(true);
    expect(evaluateGate(mother, '2026-01-11T23:00:00Z', anyTarget)).toMatchObject({ open: false, reason: 'consent-not-yet-decided' });
  });
  it('closes without a target for the organisation, or without a primary organisation', () => {
    expect(evaluateGate(mother, AT, (org) => org !== '993778125')).toMatchObject({ open: false, reason: 'no-target' });
    const { primaryTreatment: _p, ...withoutPrimary } = mother;
    expect(evaluateGate(withoutPrimary, AT, anyTarget)).toMatchObject({ open: false, reason: 'no-primary-organisation' });
  });
  it('closes without a consent, and for declined, withdrawn and expired ones', () => {
    expect(evaluateGate(parseEpisode(plannedMinimal()), AT, anyTarget)).toMatchObject({ open: false, reason: 'no-consent' });
    for (const [status, reason] of [
      ['declined', 'consent-declined'],
      ['withdrawn', 'consent-withdrawn'],
      ['expired', 'consent-expired'],
    ] as const) {
      expect(evaluateGate(parseEpisode(withConsent(completed(), status, [...SHARE_CLASSES])), AT, anyTarget)).toMatchObject({ open: false, reason });
    }
  });
});

describe('the consent matrix: every status × every subset of share × each example', () => {
  it("has a leak scan that finds what it looks for (a note, a clip uri, the parent's phone, an item answer)", () => {
    const e = examples()[0]?.[1] as AnyResource;
    const { bundle } = sharePrimary(e, { at: AT, hasTarget: anyTarget });
    expect(leaks(bundle, e)).toEqual([]);
    const planted = structuredClone(bundle);
    const task = resources(planted, 'Task')[0] as AnyResource;
    task.description = `${e.sessions[0].note} ${e.sessions[1].clips[0].uri} ${e.parent.phone}`;
    task.input = [{ type: { text: 'x' }, valueString: 'linkId 10' }];
    expect(leaks(planted, e).map((l) => l.split(':')[0])).toEqual(expect.arrayContaining(['note of S1', 'clip uri', 'parent phone', 'item answers']));
  });

  it.each(examples())('%s', (_name, example) => {
    let open = 0;
    for (const status of STATUSES) {
      for (const share of subsets()) {
        const e = withConsent(example, status, share);
        const { gate, bundle } = sharePrimary(e, { at: AT, hasTarget: anyTarget });
        const where = `${status} [${share.join(',')}]`;
        expect(leaks(bundle, e), where).toEqual([]);
        if (status !== 'active') {
          expect(gate.open, where).toBe(false);
          expect(bundle.type).toBe('batch');
          // Only the withdrawal or expiry of a consent that was given cancels open requests; nothing else is sent.
          for (const entry of bundle.entry ?? []) {
            expect(entry.request?.method, where).toBe('PATCH');
            expect(entry.request?.url, where).toMatch(/^Task\?identifier=/);
          }
          expect((bundle.entry ?? []).length > 0, where).toBe(status === 'withdrawn' || status === 'expired');
          continue;
        }
        open++;
        expect(gate.open, where).toBe(true);
        expect(bundle.type).toBe('transaction');
        const t = types(bundle);
        for (const always of ['Patient', 'Organization', 'Practitioner', 'PractitionerRole', 'EpisodeOfCare', 'Consent', 'Provenance'])
          expect(t.has(always), `${where} ${always}`).toBe(true);
        const sessions = e.sessions ?? [];
        expect(t.has('Encounter'), `${where} Encounter`).toBe(share.includes('attendance') && sessions.length > 0);
        const procedures = sessions.some(
          (s: AnyResource) =>
            s.status === 'attended' && ((share.includes('focus-areas') && s.focusElements?.length) || (share.includes('themes') && s.themes?.length)),
        );
        expect(t.has('Procedure'), `${where} Procedure`).toBe(procedures);
        expect(t.has('Observation'), `${where} Observation`).toBe(share.includes('scores'));
        expect(t.has('Flag'), `${where} Flag`).toBe(share.includes('risk-flags'));
        // Focus areas and themes only as consented, on each Procedure.
        for (const p of resources(bundle, 'Procedure')) {
          const urls = new Set(p.extension.map((x: { url: string }) => x.url.split('/').pop()));
          expect(urls.has('imh-focus-element'), where).toBe(urls.has('imh-focus-element') && share.includes('focus-areas'));
          expect(urls.has('imh-change-theme'), where).toBe(urls.has('imh-change-theme') && share.includes('themes'));
        }
        const expected = [
          ...(e.status === 'active' ? ['guidance-started'] : []),
          ...(share.includes('risk-flags') ? ['risk-follow-up'] : []),
          ...((e.status === 'finished' || e.status === 'cancelled') && share.includes('summary') ? ['guidance-ended'] : []),
        ].sort();
        expect(taskCodes(bundle), where).toEqual(expected);
      }
    }
    expect(open).toBe(64);
  });
});

describe('what the primary team receives', () => {
  const e = examples()[0]?.[1] as AnyResource;
  const { bundle } = sharePrimary(e, { at: AT, hasTarget: anyTarget });

  it('names the parent by national id, name and birth date only', () => {
    const [p] = resources(bundle, 'Patient');
    expect(Object.keys(p as AnyResource).sort()).toEqual(['birthDate', 'identifier', 'meta', 'name', 'resourceType']);
    expect(p?.identifier[0].value).toBe(e.parent.nationalId);
  });

  it('asks to follow up a positive self-harm item urgently, due a day after the assessment, focused on its Flag', () => {
    const task = tasks(bundle).find((t) => t.code?.coding?.[0]?.code === 'risk-follow-up') as AnyResource;
    expect(task.priority).toBe('urgent');
    expect(task.status).toBe('requested');
    expect(task.authoredOn).toBe('2026-01-12');
    expect(task.restriction.period.end).toBe(nextDay('2026-01-12'));
    expect(task.restriction.period.end).toBe('2026-01-13');
    const flag = resolve(bundle, task.focus);
    expect(flag.resourceType).toBe('Flag');
    expect(flag.extension ?? []).toEqual([]); // no link to the answers
    expect(resolve(bundle, task.owner).identifier[0].value).toBe('993778125');
  });

  it('writes requests and master data only when absent, everything else by conditional update', () => {
    for (const entry of bundle.entry ?? []) {
      const type = entry.resource?.resourceType as string;
      if (type === 'Provenance') expect(entry.request?.method).toBe('PUT');
      else if (type === 'Task' || isMasterData(type))
        expect(entry.request).toMatchObject({ method: 'POST', url: type, ifNoneExist: expect.stringMatching(/^identifier=/) });
      else expect(entry.request?.url).toMatch(new RegExp(`^${type}\\?identifier=`));
    }
  });

  it('carries the change over time of each measure given twice, with its classification', () => {
    const change = byIdentifier(bundle, 'Observation', 'VG-2026-0042/EPDS/total');
    expect(change.effectivePeriod).toEqual({ start: '2026-01-12', end: '2026-05-04' });
    expect(change.interpretation[0].coding[0].system).toMatch(/change-classification$/);
    expect(change.component.map((c: AnyResource) => c.code.text)).toContain('first');
  });

  it('is byte-identical for the same episode and time', () => {
    expect(JSON.stringify(sharePrimary(e, { at: AT, hasTarget: anyTarget }).bundle)).toBe(JSON.stringify(bundle));
  });

  it("passes the official R4 JSON Schema, every R4 invariant (fhirpath.js) and the bridge's validator", () => {
    expect(r4SchemaErrors(bundle)).toEqual([]);
    expect(r4InvariantFailures(bundle)).toEqual([]);
    expect(validateFhir(bundle).issue.filter((i) => i.severity === 'error')).toEqual([]);
  });
});

describe('withdrawal and expiry', () => {
  it("cancel only the bridge's requests still requested, with the reason, and send nothing new", () => {
    const e = withConsent(examples()[0]?.[1] as AnyResource, 'withdrawn', [...SHARE_CLASSES]);
    const { gate, bundle } = sharePrimary(e, { at: AT, hasTarget: anyTarget });
    expect(gate).toMatchObject({ open: false, reason: 'consent-withdrawn' });
    expect(
      bundle.entry?.map((x) =>
        decodeURIComponent(x.request?.url as string)
          .split('|')
          .pop(),
      ),
    ).toEqual(['VG-2026-0042/guidance-started', 'VG-2026-0042/risk-follow-up/A2', 'VG-2026-0042/guidance-ended']);
    for (const entry of bundle.entry ?? []) {
      const binary = entry.resource as AnyResource;
      expect(binary.contentType).toBe('application/json-patch+json');
      const patch = JSON.parse(Buffer.from(binary.data, 'base64').toString('utf8'));
      expect(patch[0]).toEqual({ op: 'test', path: '/status', value: 'requested' });
      expect(patch[1]).toEqual({ op: 'replace', path: '/status', value: 'cancelled' });
      expect(patch[2].value.text).toMatch(/withdrew the consent/);
    }
  });

  it('by date: the day the consent expires, only cancellations go', () => {
    const { gate, bundle } = sharePrimary(examples()[0]?.[1], { at: '2027-01-12T09:00:00Z', hasTarget: anyTarget });
    expect(gate).toMatchObject({ open: false, reason: 'consent-expired' });
    expect(bundle.entry?.every((x) => x.request?.method === 'PATCH')).toBe(true);
  });

  it('send nothing at all where no target is configured, or the consent was declined', () => {
    expect(sharePrimary(withConsent(completed(), 'withdrawn', [...SHARE_CLASSES]), { at: AT, hasTarget: () => false }).bundle.entry).toEqual([]);
    expect(sharePrimary(activeFather(), { at: AT, hasTarget: anyTarget }).bundle.entry).toEqual([]);
  });

  it('send nothing for an episode without a primary organisation (and without a consent)', () => {
    expect(sharePrimary(plannedMinimal(), { at: AT, hasTarget: anyTarget }).bundle.entry).toEqual([]);
    const e = parseEpisode(completed());
    const { primaryTreatment: _p, ...withoutPrimary } = e;
    const r = sharePrimaryParsed(withoutPrimary, { at: AT, hasTarget: anyTarget });
    expect(r.gate).toMatchObject({ open: false, reason: 'no-primary-organisation' });
    expect(r.bundle.entry).toEqual([]);
  });
});

describe('a risk that may not be shared is never dropped silently', () => {
  const clinicTasks = (e: AnyResource, at = AT) => {
    const parsed = parseEpisode(e);
    const b = mapParsedEpisode(parsed, undefined, clinicSharing(evaluateGate(parsed, at, anyTarget)));
    return { b, tasks: resources(b, 'Task') };
  };

  it("puts a Task for the therapist on the clinic's own server when the consent was declined", () => {
    const { b, tasks: t } = clinicTasks(activeFather());
    expect(t).toHaveLength(1);
    const task = t[0] as AnyResource;
    expect(task.code.coding[0].code).toBe('risk-not-shared');
    expect(task.priority).toBe('urgent');
    expect(task.description).toMatch(/NOT shared .*declined/);
    expect(resolve(b, task.owner).identifier[0].value).toBe(activeFather().therapist.hprNumber);
    expect(resolve(b, task.focus).resourceType).toBe('Flag');
  });

  it('also when the consent shares other things but not risk flags; never when risk flags go', () => {
    const e = withConsent(examples()[0]?.[1] as AnyResource, 'active', ['attendance', 'scores']);
    const { tasks: t } = clinicTasks(e);
    expect(t.map((x) => x.identifier[0].value)).toEqual(['VG-2026-0042/risk-not-shared/A2']);
    expect(t[0]?.description).toMatch(/does not include risk flags/);
    expect(clinicTasks(examples()[0]?.[1] as AnyResource).tasks).toEqual([]);
  });
});

describe('audit of disclosures (IHE BALP PrivacyDisclosure at the source)', () => {
  const e = parseEpisode(examples()[0]?.[1]);
  const { bundle } = sharePrimaryParsed(e, { at: AT, hasTarget: anyTarget });
  const base = { key: 'job-1|primary.993778125', at: AT, episode: e, identity: DEV_IDENTITY, caller: 'journal-north' };

  it('names who, what patient, which consent, what was sent, to which organisation and endpoint, why, and the outcome', () => {
    const a = disclosureAuditEvent({
      ...base,
      recipient: { orgNumber: '993778125', endpoint: 'https://fhir.primary.example/r4' },
      sent: bundle,
      outcome: 'success',
    }) as AnyResource;
    expect(a.type).toMatchObject({ system: 'http://dicom.nema.org/resources/ontology/DCM', code: '110106' });
    expect(a.subtype[0]).toMatchObject({ system: 'http://terminology.hl7.org/CodeSystem/iso-21089-lifecycle', code: 'disclose' });
    expect(a.purposeOfEvent[0].coding[0].code).toBe('TREAT');
    expect(a.outcome).toBe('0');
    const agent = (code: string) => a.agent.find((x: AnyResource) => x.type.coding[0].code === code);
    expect(agent('110152').who.identifier.value).toBe('993778125');
    expect(agent('110152').network).toEqual({ address: 'https://fhir.primary.example/r4', type: '5' });
    expect(agent('CST').who.identifier.value).toBe('974557746');
    expect(agent('110150')).toMatchObject({ who: { display: 'journal-north' }, requestor: true });
    expect(a.entity[0].what.identifier.value).toBe(e.parent.nationalId);
    expect(a.entity.find((x: AnyResource) => x.what.type === 'Consent').what.identifier.value).toBe('CN-2026-0042');
    const sent = a.entity.filter((x: AnyResource) => x.what.type === 'Encounter');
    expect(sent).toHaveLength(9);
    expect(r4SchemaErrors(a)).toEqual([]);
    expect(r4InvariantFailures(a)).toEqual([]);
    expect(validateFhir(a as unknown as AuditEvent).issue.filter((i) => i.severity === 'error')).toEqual([]);
  });

  it('records a refusal because of consent, with the reason and nothing sent; one id per send, whatever the retries', () => {
    const refused = disclosureAuditEvent({
      ...base,
      recipient: { orgNumber: '993778125' },
      outcome: 'refused',
      reason: 'the parent withdrew the consent to share with the primary treatment team',
    }) as AnyResource;
    expect(refused.outcome).toBe('4');
    expect(refused.outcomeDesc).toMatch(/withdrew/);
    expect(refused.entity.map((x: AnyResource) => x.what.type ?? 'Patient')).toEqual(['Patient', 'EpisodeOfCare', 'Consent']);
    expect(disclosureAuditEvent({ ...base, outcome: 'refused' }).id).toBe(refused.id);
    expect(disclosureAuditEvent({ ...base, key: 'job-2|primary.993778125', outcome: 'refused' }).id).not.toBe(refused.id);
  });
});
