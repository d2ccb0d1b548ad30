/**
 * The coordination summary document (shared contract sharing.md, category "summary"): sections
 * exactly as consented, nothing that never crosses in any entry or narrative, valid R4 and
 * valid for the bridge's validator, byte-stable, bokmål and English, signed and verifiable.
 */
import type { Bundle, Composition, Task } from '@medplum/fhirtypes';
import { describe, expect, it } from 'vitest';
import { publicJwks } from '../../src/auth/jwks.ts';
import { SHARE_CLASSES, type ShareClass } from '../../src/coordination/gate.ts';
import { buildSummary, signSummary, summaryModel, verifySummary } from '../../src/coordination/summary.ts';
import { renderSummaryPage } from '../../src/coordination/summary-page.ts';
import { ageInMonths, formatDate } from '../../src/coordination/summary-text.ts';
import { parseEpisode } from '../../src/domain/parse.ts';
import { isOperationOutcomeError } from '../../src/fhir/outcome.ts';
import { validateFhir } from '../../src/fhir/validate.ts';
import { type AnyResource, resolve, resources } from '../fixtures/bundle.ts';
import { activeFather, completed } from '../fixtures/examples.ts';
import { privateJwk } from '../fixtures/keys.ts';
import { leaks } from '../fixtures/leaks.ts';
import { r4InvariantFailures, r4SchemaErrors } from '../fixtures/r4-independent.ts';

const AT = '2026-05-10T10:00:00Z';
const OTHER_PARTS = SHARE_CLASSES.filter((c) => c !== 'summary');

/** The mother with a positive PHQ-9 self-harm item (A2) and a note that needs escaping; the father (EPDS item 10 positive). */
const examples = (): [string, AnyResource][] => {
  const mother = completed();
  mother.assessments[1].answers['9'] = 1;
  mother.sessions[2].note = `Mother's "own" words <b>& more</b>: ${mother.sessions[2].note}`;
  return [
    ['completed mother', mother],
    ['active father', activeFather()],
  ];
};

const withConsent = (e: AnyResource, share: ShareClass[], status = 'active') => {
  const x = structuredClone(e);
  x.consent = { consentId: 'CN-TEST', status, decidedOn: '2026-01-12', expiresOn: '2027-01-12', recipient: 'primary-treatment', share };
  return x;
};

const subsets = (of: readonly ShareClass[]): ShareClass[][] => {
  const out: ShareClass[][] = [];
  for (let m = 0; m < 1 << of.length; m++) out.push(of.filter((_, i) => m & (1 << i)));
  return out;
};

const composition = (b: Bundle) => b.entry?.[0]?.resource as Composition;
const sectionIds = (b: Bundle) => (composition(b).section ?? []).map((s) => s.id);
const narratives = (b: Bundle) => (composition(b).section ?? []).map((s) => s.text?.div ?? '');
/** What a reader sees of a narrative: markup dropped, entities decoded. */
const readable = (div: string) =>
  div
    .replace(/<[^>]+>/g, ' ')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&amp;/g, '&');

/** Leaks in the document's JSON and in every narrative as a reader sees it. */
const allLeaks = (b: Bundle, e: AnyResource) => [...leaks(b, e), ...narratives(b).flatMap((d) => leaks(b, e, readable(d)))];

const build = (e: AnyResource, lang: 'nb' | 'en' = 'nb', extra: { requests?: Task[]; at?: string } = {}) =>
  buildSummary(parseEpisode(e), { at: extra.at ?? AT, lang, ...(extra.requests ? { requests: extra.requests } : {}) });

const refusal = (f: () => unknown): { status: number; code?: string; text?: string } => {
  try {
    f();
  } catch (err) {
    if (isOperationOutcomeError(err)) return { status: err.status, code: err.outcome.issue?.[0]?.code, text: err.outcome.issue?.[0]?.details?.text };
    throw err;
  }
  throw new Error('no refusal: a document was built');
};

describe('sections exactly as consented, nothing that never crosses', () => {
  it('has a leak scan that finds a note and a clip uri planted in a narrative, escaped as XHTML escapes them', () => {
    const [, mother] = examples()[0] as [string, AnyResource];
    const b = build(mother);
    expect(allLeaks(b, mother)).toEqual([]);
    const planted = structuredClone(b);
    const section = (composition(planted).section ?? [])[0] as AnyResource;
    section.text.div = section.text.div.replace(
      '</div>',
      `<p>${mother.sessions[2].note.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/'/g, '&#39;').replace(/"/g, '&quot;')} ${mother.sessions[1].clips[0].uri}</p></div>`,
    );
    const found = allLeaks(planted, mother).map((l) => l.split(':')[0]);
    expect(found).toEqual(expect.arrayContaining(['note of S3', 'clip uri']));
  });

  it.each(examples())('%s: every subset of the other parts, with summary', (_name, example) => {
    for (const share of subsets(OTHER_PARTS)) {
      const e = withConsent(example, [...share, 'summary']);
      const where = `[${share.join(',')}]`;
      for (const lang of ['nb', 'en'] as const) {
        const b = build(e, lang);
        expect(b.type, where).toBe('document');
        expect(sectionIds(b), where).toEqual([
          ...['attendance', 'focus-areas', 'themes', 'scores', 'risk-flags'].filter((c) => share.includes(c as ShareClass)),
          'summary',
          'contact',
        ]);
        expect(allLeaks(b, e), `${where} ${lang}`).toEqual([]);
        // The page: the same parts, nothing that never crosses, nothing it would have to fetch or run.
        const html = renderSummaryPage(parseEpisode(e), { at: AT, lang });
        expect([...leaks(b, e, html), ...leaks(b, e, readable(html))], `${where} ${lang} page`).toEqual([]);
        expect(html, where).not.toMatch(/<script|\ssrc=|\shref=|url\(|@import|<link|<img|<iframe|<object/i);
        expect(
          [...html.matchAll(/<h2 id="h-([a-z-]+)"/g)].map((x) => x[1]),
          where,
        ).toEqual(sectionIds(b));
        const types = new Set(resources(b).map((r) => r.resourceType));
        expect(types.has('Encounter'), where).toBe(share.includes('attendance'));
        expect(types.has('Flag'), where).toBe(share.includes('risk-flags'));
        expect(
          resources(b, 'Observation').some((o) => o.code.coding[0].code !== 'cgi-i'),
          where,
        ).toBe(share.includes('scores'));
        for (const r of ['Patient', 'RelatedPerson', 'QuestionnaireResponse', 'Condition', 'ServiceRequest', 'DocumentReference', 'Media']) {
          if (r === 'Patient')
            expect(resources(b, r), where).toHaveLength(1); // the parent only, never an infant
          else expect(types.has(r), `${where} ${r}`).toBe(false);
        }
        // Every section has a generated XHTML narrative, and every entry it cites is in the document.
        for (const s of composition(b).section ?? []) {
          expect(s.text?.status).toBe('generated');
          expect(s.text?.div).toMatch(/^<div xmlns="http:\/\/www\.w3\.org\/1999\/xhtml">.+<\/div>$/s);
          for (const r of s.entry ?? []) expect(() => resolve(b, r), `${where} ${s.id} ${r.reference}`).not.toThrow();
        }
      }
    }
  });

  it('cites in each section the resources of its part', () => {
    const [, mother] = examples()[0] as [string, AnyResource];
    const b = build(mother);
    const cited = (id: string) => ((composition(b).section ?? []).find((s) => s.id === id)?.entry ?? []).map((r) => resolve(b, r).resourceType);
    expect(cited('attendance')).toEqual(Array(9).fill('Encounter'));
    expect(new Set(cited('focus-areas'))).toEqual(new Set(['Procedure']));
    expect(new Set(cited('scores'))).toEqual(new Set(['Observation']));
    expect(cited('risk-flags').sort()).toEqual(['Flag', 'Task']);
    expect(cited('summary').sort()).toEqual(['Goal', 'Goal', 'Observation']);
    expect(cited('contact')).toEqual(['PractitionerRole', 'Practitioner', 'Organization']);
  });
});

describe('no summary without the gate open and summary shared', () => {
  it('refuses, with an OperationOutcome and never an empty document, for every closed gate', () => {
    const [, mother] = examples()[0] as [string, AnyResource];
    for (const [status, words] of [
      ['withdrawn', /withdrew/],
      ['declined', /declined/],
      ['expired', /expired/],
    ] as const) {
      expect(refusal(() => build(withConsent(mother, [...SHARE_CLASSES], status)))).toMatchObject({
        status: 403,
        code: 'forbidden',
        text: expect.stringMatching(words),
      });
    }
    expect(refusal(() => build(mother, 'nb', { at: '2027-01-12T09:00:00Z' }))).toMatchObject({ status: 403, text: expect.stringMatching(/expired/) });
    expect(refusal(() => build(activeFather()))).toMatchObject({ status: 403, text: expect.stringMatching(/declined/) });
    const { primaryTreatment: _p, consent: _c, ...noPrimary } = mother;
    expect(refusal(() => build(noPrimary))).toMatchObject({ status: 403, text: expect.stringMatching(/no consent/) });
  });

  it('refuses every consent that does not share summary, however much else it shares', () => {
    const [, mother] = examples()[0] as [string, AnyResource];
    for (const share of subsets(OTHER_PARTS)) {
      expect(refusal(() => build(withConsent(mother, share)))).toMatchObject({
        status: 403,
        text: expect.stringMatching(/does not include the coordination summary/),
      });
    }
  });

  it('refuses a time that is not an instant, and an unknown language', () => {
    const e = parseEpisode(completed());
    expect(refusal(() => buildSummary(e, { at: '2026-05-10', lang: 'nb' })).status).toBe(400);
    expect(refusal(() => buildSummary(e, { at: AT, lang: 'de' as 'nb' })).status).toBe(400);
  });
});

describe('the document', () => {
  const [, mother] = examples()[0] as [string, AnyResource];

  it.each(['nb', 'en'] as const)("passes the R4 JSON Schema, every R4 invariant (fhirpath.js) and the bridge's validator (%s)", (lang) => {
    const b = build(mother, lang);
    expect(r4SchemaErrors(b)).toEqual([]);
    expect(r4InvariantFailures(b)).toEqual([]);
    expect(validateFhir(b).issue.filter((i) => i.severity === 'error' || i.severity === 'warning')).toEqual([]);
  });

  it('is a document whose Composition is an episode summary note about the parent, by the therapist and the clinic', () => {
    const b = build(mother);
    expect(b).toMatchObject({ type: 'document', timestamp: AT, identifier: { system: 'urn:ietf:rfc:3986', value: expect.stringMatching(/^urn:uuid:/) } });
    const c = composition(b) as AnyResource;
    expect(c.type.coding[0]).toEqual({ system: 'http://loinc.org', code: '34133-9', display: 'Summary of episode note' });
    expect(c).toMatchObject({ status: 'final', date: AT, confidentiality: 'R', language: 'nb' });
    expect(resolve(b, c.subject).identifier[0].value).toBe(mother.parent.nationalId);
    expect(c.author.map((a: AnyResource) => resolve(b, a).resourceType)).toEqual(['PractitionerRole', 'Organization']);
    expect(resolve(b, c.custodian).identifier[0].value).toBe(mother.clinic.orgNumber);
    expect(c.event[0].period).toEqual({ start: '2026-01-12', end: '2026-05-04' });
    expect(resolve(b, c.event[0].detail[0]).resourceType).toBe('EpisodeOfCare');
  });

  it('is byte-identical for the same input and time, and another document at another time', () => {
    expect(JSON.stringify(build(mother))).toBe(JSON.stringify(build(mother)));
    const later = build(mother, 'nb', { at: '2026-06-01T08:00:00Z' });
    expect(later.identifier?.value).not.toBe(build(mother).identifier?.value);
    expect(composition(later).identifier).toEqual(composition(build(mother)).identifier); // the same summary, a new version
  });

  it('speaks bokmål with Norwegian dates and letters, or English', () => {
    const nb = build(mother, 'nb');
    const en = build(mother, 'en');
    const nbText = narratives(nb).map(readable).join(' ');
    const enText = narratives(en).map(readable).join(' ');
    expect(nbText).toContain('4. mai 2026');
    expect(nbText).toContain('Sped- og småbarnsteamet, BUP Vest');
    expect(JSON.stringify(nb)).toContain('Forløp og oppmøte'); // not escaped away
    expect(nbText).toMatch(/bedring til under klinisk grense/);
    expect(enText).toContain('4 May 2026');
    expect(enText).toMatch(/recovered/);
    expect(sectionIds(nb)).toEqual(sectionIds(en));
    expect(composition(en).title).toBe('Coordination summary: video guidance (Marte Meo)');
  });

  it('speaks of the infant by first name and age in months only', () => {
    expect(ageInMonths('2025-10-11', '2026-05-10')).toBe(6);
    expect(ageInMonths('2025-10-11', '2026-05-11')).toBe(7);
    const text = narratives(build(mother)).map(readable).join(' ');
    expect(text).toContain('Emil (6 måneder)');
    expect(text).not.toContain(formatDate(mother.infants[0].birthDate, 'nb'));
  });

  it('shows each change over time with its reliable-change classification', () => {
    const scores = readable(narratives(build(mother, 'en'))[3] as string);
    expect(scores).toMatch(/PHQ-9.*14 \(12 January 2026\) → 7 \(4 May 2026\), change −7, RCI −3\.78: recovered/s);
    expect(summaryModel(parseEpisode(mother), { at: AT, lang: 'en' }).scores?.find((s) => s.instrument === 'GAD-7')?.outcome?.classification).toBe('recovered');
  });

  it('shows a risk and the status of its follow-up request as the primary team set it', () => {
    const first = build(mother, 'en');
    const task = resources(first, 'Task')[0] as AnyResource;
    expect(task.status).toBe('requested');
    expect(readable(narratives(first)[4] as string)).toMatch(
      /PHQ-9 of 12 January 2026: the self-harm item \(item 9\).*due 13 January 2026: sent, not yet acted on/,
    );
    const readBack: Task = {
      resourceType: 'Task',
      id: 'server-1',
      identifier: task.identifier,
      status: 'in-progress',
      intent: 'order',
      lastModified: '2026-01-12T14:00:00Z',
    };
    const b = build(mother, 'en', { requests: [readBack] });
    expect((resources(b, 'Task')[0] as AnyResource).status).toBe('in-progress');
    expect(readable(narratives(b)[4] as string)).toMatch(/in progress \(12 January 2026\)/);
    expect(resources(b, 'Task')[0]?.id).toBeUndefined();
    // A status R4 does not know, as a server might send: the request stays as the bridge sent it.
    const odd = build(mother, 'en', { requests: [{ ...readBack, status: 'parked' as Task['status'] }] });
    expect((resources(odd, 'Task')[0] as AnyResource).status).toBe('requested');
  });
});

describe('the signature', () => {
  const [, mother] = examples()[0] as [string, AnyResource];

  it.each(['RS384', 'ES384'] as const)('verifies against the public JWKS (%s), and a tampered copy does not', async (alg) => {
    const key = await privateJwk(alg, `k-${alg}`);
    const signed = await signSummary(build(mother), { keys: [key] });
    const sig = signed.signature as AnyResource;
    expect(sig.type[0]).toEqual({ system: 'urn:iso-astm:E1762-95:2013', code: '1.2.840.10065.1.12.1.1', display: "Author's Signature" });
    expect(sig.when).toBe(signed.timestamp);
    expect(sig.sigFormat).toBe('application/jose');
    expect(resolve(signed, sig.who)).toMatchObject({
      resourceType: 'Organization',
      identifier: expect.arrayContaining([expect.objectContaining({ value: mother.clinic.orgNumber })]),
    });
    const jws = Buffer.from(sig.data, 'base64').toString('utf8');
    expect(jws).toMatch(/^[\w-]+\.\.[\w-]+$/); // detached compact JWS
    expect(JSON.parse(Buffer.from(jws.split('.')[0] as string, 'base64url').toString())).toMatchObject({ alg, kid: `k-${alg}` });

    const jwks = publicJwks({ keys: [key] });
    expect(await verifySummary(signed, jwks)).toBe(true);
    expect(r4SchemaErrors(signed)).toEqual([]);
    expect(validateFhir(signed).issue.filter((i) => i.severity === 'error')).toEqual([]);

    const score = structuredClone(signed);
    const obs = resources(score, 'Observation').find((o) => o.valueInteger === 14) as AnyResource;
    obs.valueInteger = 3;
    expect(await verifySummary(score, jwks)).toBe(false);
    const narrative = structuredClone(signed);
    const s = (composition(narrative).section ?? [])[3] as AnyResource;
    s.text.div = s.text.div.replace('recovered', 'deteriorated').replace('bedring til under klinisk grense', 'reliabel forverring');
    expect(s.text.div).not.toBe((composition(signed).section ?? [])[3]?.text?.div);
    expect(await verifySummary(narrative, jwks)).toBe(false);
    const other = await privateJwk(alg, `k-${alg}`);
    expect(await verifySummary(signed, publicJwks({ keys: [other] }))).toBe(false);
    expect(await verifySummary({ ...signed, signature: undefined } as Bundle, jwks)).toBe(false);
  });
});
