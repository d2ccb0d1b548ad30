import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { CodeSystem, Coding, Questionnaire, QuestionnaireItem, Resource, ValueSet } from '@medplum/fhirtypes';
import { describe, expect, it } from 'vitest';
import { validateFhir } from '../../src/fhir/validate.ts';
import { createApp } from '../../src/http/app.ts';
import { accessFor } from '../../src/http/auth.ts';
import { openApiDocument } from '../../src/http/openapi.ts';
import { answerCoding, itemCode, rawAnswer } from '../../src/instruments/answers.ts';
import { INSTRUMENTS, type InstrumentDefinition, type InstrumentId } from '../../src/instruments/definitions.ts';
import { EXT, instrumentForQuestionnaire, QUESTIONNAIRE_IDS, questionnaire, questionnaireForUrl } from '../../src/instruments/questionnaires.ts';
import { itemScore } from '../../src/instruments/scoring.ts';

const root = resolve(import.meta.dirname, '../..');
const errors = (r: Resource) => validateFhir(r).issue.filter((i) => i.severity === 'error' || i.severity === 'fatal');
const q = (id: string): Questionnaire => {
  const found = questionnaire(id);
  if (!found) throw new Error(`no Questionnaire ${id}`);
  return found;
};
const withItems = (Object.values(INSTRUMENTS) as InstrumentDefinition[]).filter((d) => d.items.length > 0);
const rawValues = (d: InstrumentDefinition) => Array.from({ length: d.max - d.min + 1 }, (_, i) => d.min + i);
const item = (questionnaireId: string, linkId: string): QuestionnaireItem => {
  const found = q(questionnaireId).item?.find((i) => i.linkId === linkId);
  if (!found) throw new Error(`${questionnaireId} has no item ${linkId}`);
  return found;
};
const ext = (el: { extension?: { url: string; valueDecimal?: number }[] } | undefined, url: string) => el?.extension?.find((e) => e.url === url)?.valueDecimal;
const codeSystem = (id: string): CodeSystem => JSON.parse(readFileSync(resolve(root, 'mappings', `CodeSystem-${id}.json`), 'utf8'));
const inCodeSystem = (c: Coding) => {
  const id = c.system?.split('/CodeSystem/')[1];
  return !!id && codeSystem(id).concept?.some((x) => x.code === c.code && x.display === c.display);
};

describe('published Questionnaires', () => {
  it('are the six expected, with stable canonical URLs and version', () => {
    expect(QUESTIONNAIRE_IDS).toEqual(['epds', 'phq-9', 'gad-7', 'prfq', 'pdi-rf', 'marte-meo-session-review']);
    for (const id of QUESTIONNAIRE_IDS) {
      const x = q(id);
      expect([x.id, x.url, x.version, x.status]).toEqual([id, `https://imh-bridge.example.no/fhir/Questionnaire/${id}`, '1.0.0', 'active']);
      expect(x.subjectType).toEqual(['Patient']);
      expect(x.date).toMatch(/^\d{4}-\d{2}-\d{2}$/);
    }
    expect(questionnaire('nope')).toBeUndefined();
  });

  it.each(QUESTIONNAIRE_IDS)('%s validates against R4 with no errors', (id) => {
    expect(errors(q(id))).toEqual([]);
  });

  it('the validator does look inside a Questionnaire (so the check above can fail)', () => {
    const broken = structuredClone(q('phq-9')) as unknown as { item: { type: string }[] };
    (broken.item[1] as { type: string }).type = 'multiple-choice';
    expect(errors(broken as unknown as Resource).length).toBeGreaterThan(0);
  });

  it.each(QUESTIONNAIRE_IDS)('profiles/Questionnaire-%s.json is what questionnaire() builds', (id) => {
    const file = readFileSync(resolve(root, 'profiles', `Questionnaire-${id}.json`), 'utf8');
    expect(file).toBe(`${JSON.stringify(q(id), null, 2)}\n`);
  });

  it('profiles/ holds no other Questionnaire, and the build script agrees (--check)', () => {
    const files = readdirSync(resolve(root, 'profiles')).filter((f) => f.startsWith('Questionnaire-'));
    expect(files.sort()).toEqual(QUESTIONNAIRE_IDS.map((id) => `Questionnaire-${id}.json`).sort());
    execFileSync(process.execPath, ['scripts/build-questionnaires.ts', '--check'], { cwd: root, stdio: 'pipe' });
  }, 60_000);

  it('building is deterministic', () => {
    for (const id of QUESTIONNAIRE_IDS) expect(JSON.stringify(questionnaire(id))).toBe(JSON.stringify(questionnaire(id)));
  });

  it('canonical lookups accept url and url|version, and nothing else', () => {
    const url = 'https://imh-bridge.example.no/fhir/Questionnaire/phq-9';
    expect(questionnaireForUrl(url)?.id).toBe('phq-9');
    expect(questionnaireForUrl(`${url}|1.0.0`)?.id).toBe('phq-9');
    expect(questionnaireForUrl(`${url}|2.0.0`)).toBeUndefined();
    expect(questionnaireForUrl('http://example.org/Questionnaire/phq-9')).toBeUndefined();
    expect(instrumentForQuestionnaire(`${url}|1.0.0`)).toBe('PHQ-9');
    for (const d of Object.values(INSTRUMENTS)) expect(instrumentForQuestionnaire(q(d.questionnaireId).url as string)).toBe(d.id);
    expect(instrumentForQuestionnaire('https://imh-bridge.example.no/fhir/Questionnaire/marte-meo-session-review')).toBeUndefined();
  });
});

describe('scores in the forms are the scoring engine', () => {
  it.each(withItems.map((d) => d.id))('%s: every answerOption carries itemScore() of its raw answer', (id) => {
    const def = INSTRUMENTS[id as InstrumentId];
    for (const key of def.items) {
      const options = item(def.questionnaireId, key).answerOption ?? [];
      expect(options).toHaveLength(def.max - def.min + 1);
      for (const option of options) {
        const coding = option.valueCoding as Coding;
        const raw = rawAnswer(def.id, key, coding);
        expect(raw).toBeDefined();
        const score = itemScore(def.id, key, raw as number);
        expect([key, coding.code, ext(coding, EXT.ordinalValue)]).toEqual([key, coding.code, score]);
        expect([key, coding.code, ext(option, EXT.itemWeight)]).toEqual([key, coding.code, score]);
      }
    }
  });

  it('reversed items: EPDS item 3, top option scores 3; item 1, top option scores 0; PRFQ item 11, answer 1 scores 7', () => {
    expect(ext(item('epds', '3').answerOption?.[0]?.valueCoding, EXT.ordinalValue)).toBe(3);
    expect(ext(item('epds', '1').answerOption?.[0]?.valueCoding, EXT.ordinalValue)).toBe(0);
    expect(ext(item('epds', '10').answerOption?.[3]?.valueCoding, EXT.ordinalValue)).toBe(0);
    expect(ext(item('prfq', '11').answerOption?.[0]?.valueCoding, EXT.ordinalValue)).toBe(7);
    expect(ext(item('prfq', '12').answerOption?.[0]?.valueCoding, EXT.ordinalValue)).toBe(1);
  });

  it('totals and subscales: calculatedExpression over exactly the scored items, and observationExtract', () => {
    for (const d of withItems) {
      const scored = [...(d.total ? [{ linkId: 'total', items: d.items, code: d.total.code.code }] : [])].concat(
        (d.subscales ?? []).map((s) => ({ linkId: s.code, items: s.items, code: s.code })),
      );
      expect(scored.length).toBeGreaterThan(0);
      for (const s of scored) {
        const it = item(d.questionnaireId, s.linkId);
        expect(it.readOnly).toBe(true);
        expect(it.type).toBe(d.total ? 'integer' : 'decimal');
        expect(it.code?.[0]?.code).toBe(s.code);
        expect(it.extension?.find((e) => e.url === EXT.observationExtract)?.valueBoolean).toBe(true);
        const expr = it.extension?.find((e) => e.url === EXT.calculatedExpression)?.valueExpression;
        expect(expr?.language).toBe('text/fhirpath');
        const linkIds = [...(expr?.expression ?? '').matchAll(/linkId in \(([^)]*)\)/g)].map((m) => m[1]);
        expect(linkIds.length).toBeGreaterThan(0);
        for (const list of linkIds) expect(list?.split(' | ').map((x) => x.slice(1, -1))).toEqual(s.items);
        expect(expr?.expression).toContain(`.count() = ${s.items.length}`);
      }
    }
  });

  it('PDI-RF: one required integer rf-score, −1…9, extracted as instrument-score#pdi-rf', () => {
    expect(q('pdi-rf').item).toHaveLength(1);
    const it = item('pdi-rf', 'rf-score');
    expect([it.type, it.required]).toEqual(['integer', true]);
    expect(it.extension?.find((e) => e.url === EXT.minValue)?.valueInteger).toBe(-1);
    expect(it.extension?.find((e) => e.url === EXT.maxValue)?.valueInteger).toBe(9);
    expect(it.extension?.find((e) => e.url === EXT.observationExtract)?.valueBoolean).toBe(true);
    expect(it.code).toEqual([{ system: 'https://imh-bridge.example.no/fhir/CodeSystem/instrument-score', code: 'pdi-rf', display: expect.any(String) }]);
    expect(inCodeSystem(it.code?.[0] as Coding)).toBe(true);
  });
});

describe('answers.ts', () => {
  it.each(withItems.map((d) => d.id))('%s: answerCoding and rawAnswer round-trip for every item and raw value', (id) => {
    const def = INSTRUMENTS[id as InstrumentId];
    for (const key of def.items) {
      for (const raw of rawValues(def)) {
        const coding = answerCoding(def.id, key, raw);
        expect(rawAnswer(def.id, key, coding)).toBe(raw);
        // Display is never matched on.
        expect(rawAnswer(def.id, key, { system: coding.system, code: coding.code, display: 'anything' })).toBe(raw);
        // The Questionnaire offers exactly this Coding for this item.
        const offered = item(def.questionnaireId, key).answerOption?.map((o) => {
          const { extension: _score, ...c } = o.valueCoding as Coding;
          return c;
        });
        expect(offered).toContainEqual(coding);
      }
    }
  });

  it('rejects answers outside the range, unknown items and foreign codings', () => {
    expect(() => answerCoding('EPDS', '1', 4)).toThrow();
    expect(() => answerCoding('EPDS', '1', -1)).toThrow();
    expect(() => answerCoding('PRFQ', '1', 0)).toThrow();
    expect(() => answerCoding('PRFQ', '1', 1.5)).toThrow();
    expect(() => answerCoding('PHQ-9', '10', 0)).toThrow();
    expect(() => answerCoding('PDI-RF', '1', 5)).toThrow();
    const notAtAll = answerCoding('PHQ-9', '1', 0);
    expect(rawAnswer('PHQ-9', '1', { ...notAtAll, system: 'http://example.org' })).toBeUndefined();
    expect(rawAnswer('PHQ-9', '1', { system: notAtAll.system, display: notAtAll.display })).toBeUndefined();
    expect(rawAnswer('PHQ-9', '10', notAtAll)).toBeUndefined();
    expect(rawAnswer('EPDS', '1', notAtAll)).toBeUndefined();
    expect(rawAnswer('PDI-RF', '1', notAtAll)).toBeUndefined();
  });

  it('PHQ-9 and GAD-7 answers are the LOINC answer list LL358-3', () => {
    const ll = ['LA6568-5', 'LA6569-3', 'LA6570-1', 'LA6571-9'];
    for (const id of ['PHQ-9', 'GAD-7'] as const) {
      expect([0, 1, 2, 3].map((r) => answerCoding(id, '1', r))).toEqual([
        { system: 'http://loinc.org', code: ll[0], display: 'Not at all' },
        { system: 'http://loinc.org', code: ll[1], display: 'Several days' },
        { system: 'http://loinc.org', code: ll[2], display: 'More than half the days' },
        { system: 'http://loinc.org', code: ll[3], display: 'Nearly every day' },
      ]);
    }
  });

  it('PHQ-9 and GAD-7 item codes are the verified LOINC codes in form order', () => {
    const codes = (id: InstrumentId) => INSTRUMENTS[id].items.map((k) => itemCode(id, k)?.code);
    expect(codes('PHQ-9')).toEqual(['44250-9', '44255-8', '44259-0', '44254-1', '44251-7', '44258-2', '44252-5', '44253-3', '44260-8']);
    expect(codes('GAD-7')).toEqual(['69725-0', '68509-9', '69733-4', '69734-2', '69735-9', '69689-8', '69736-7']);
    const loinc = JSON.parse(readFileSync(resolve(root, 'mappings', 'loinc-instruments.json'), 'utf8')).instruments;
    for (const id of ['PHQ-9', 'GAD-7'] as const) {
      for (const k of INSTRUMENTS[id].items)
        expect(itemCode(id, k)).toEqual({ system: 'http://loinc.org', code: loinc[id].items[k].code, display: loinc[id].items[k].display });
      expect(q(INSTRUMENTS[id].questionnaireId).code?.[0]?.code).toBe(loinc[id].panel.code);
    }
    expect(q('epds').code?.[0]?.code).toBe(loinc.EPDS.panel.code);
    expect(q('prfq').code).toBeUndefined();
  });

  it('item codes: every item of the Questionnaire is coded with itemCode(), and ours are in CodeSystem instrument-item', () => {
    for (const d of withItems) {
      for (const k of d.items) {
        const code = itemCode(d.id, k) as Coding;
        expect(item(d.questionnaireId, k).code).toEqual([code]);
        if (code.system !== 'http://loinc.org') expect([k, inCodeSystem(code)]).toEqual([k, true]);
      }
    }
    expect(itemCode('EPDS', '3')).toEqual({ system: 'https://imh-bridge.example.no/fhir/CodeSystem/instrument-item', code: 'epds-3', display: 'EPDS item 3' });
    expect(itemCode('EPDS', '11')).toBeUndefined();
    expect(itemCode('PDI-RF', '1')).toBeUndefined();
  });

  it('answer codes of our own CodeSystems exist there with the same display', () => {
    for (const d of withItems) {
      for (const raw of rawValues(d)) {
        const c = answerCoding(d.id, d.items[0] as string, raw);
        if (c.system !== 'http://loinc.org') expect([d.id, raw, inCodeSystem(c)]).toEqual([d.id, raw, true]);
      }
    }
  });
});

describe('licensing: what text is shipped', () => {
  it('EPDS and PRFQ carry placeholders only, and a copyright note', () => {
    for (const [id, label] of [
      ['epds', 'EPDS'],
      ['prfq', 'PRFQ'],
    ] as const) {
      const x = q(id);
      expect(x.copyright).toMatch(id === 'epds' ? /Royal College of Psychiatrists 1987/ : /Luyten/);
      const choice = x.item?.filter((i) => i.type === 'choice') ?? [];
      expect(choice.map((i) => i.text)).toEqual(choice.map((i) => `${label} item ${i.linkId}`));
      expect(x.item?.some((i) => i.type === 'display')).toBe(false);
    }
  });

  it('PHQ-9 and GAD-7 carry the standard English wording and the Pfizer notice, no other language', () => {
    expect(item('phq-9', '9').text).toBe('Thoughts that you would be better off dead or of hurting yourself in some way');
    expect(item('gad-7', '5').text).toBe('Being so restless that it is hard to sit still');
    for (const id of ['phq-9', 'gad-7']) {
      expect(q(id).copyright).toMatch(/No permission required to reproduce, translate, display or distribute/);
      expect(JSON.stringify(q(id))).not.toContain(EXT.translation);
    }
  });

  it('the session review form is in English with Norwegian bokmål translations', () => {
    const x = q('marte-meo-session-review') as Questionnaire & { item: (QuestionnaireItem & { _text?: { extension: unknown[] } })[] };
    expect(x.item.map((i) => [i.linkId, i.type, i.repeats ?? false])).toEqual([
      ['session-date', 'date', false],
      ['clips-reviewed', 'string', true],
      ['focus-elements', 'choice', true],
      ['themes', 'choice', true],
    ]);
    // Options inline, exactly the concepts of our CodeSystems, so no terminology server is needed.
    for (const [linkId, cs] of [
      ['focus-elements', 'marte-meo-focus-element'],
      ['themes', 'change-process-theme'],
    ] as const) {
      const options = item('marte-meo-session-review', linkId).answerOption?.map((o) => o.valueCoding);
      expect(options).toEqual(codeSystem(cs).concept?.map((c) => ({ system: codeSystem(cs).url, code: c.code, display: c.display })));
    }
    for (const i of x.item) {
      expect(i._text?.extension).toEqual([
        {
          url: EXT.translation,
          extension: [
            { url: 'lang', valueCode: 'nb' },
            { url: 'content', valueString: expect.any(String) },
          ],
        },
      ]);
      expect(inCodeSystem(i.code?.[0] as Coding)).toBe(true);
    }
  });
});

describe('every published Questionnaire is fillable without a terminology server', () => {
  const choiceItems = (x: Questionnaire): QuestionnaireItem[] => {
    const out: QuestionnaireItem[] = [];
    const walk = (items: QuestionnaireItem[] | undefined) =>
      items?.forEach((i) => (i.type === 'choice' || i.type === 'open-choice' ? out.push(i) : undefined, walk(i.item)));
    walk(x.item);
    return out;
  };

  /** Choice items a renderer could not offer options for without a terminology server. */
  const unfillable = (x: Questionnaire): string[] => {
    const contained = new Map((x.contained ?? []).filter((r) => r.resourceType === 'ValueSet').map((v) => [`#${v.id}`, v]));
    return choiceItems(x)
      .filter((i) => {
        // Only a reference into the Questionnaire itself resolves without a server.
        if (i.answerValueSet) return !contained.get(i.answerValueSet)?.expansion?.contains?.length;
        return !(i.answerOption?.length && i.answerOption.every((o) => o.valueCoding?.system && o.valueCoding.code && o.valueCoding.display));
      })
      .map((i) => i.linkId as string);
  };

  it.each(QUESTIONNAIRE_IDS)('%s: every choice item lists its options inline, or in a contained ValueSet with an expansion', (id) => {
    expect(unfillable(q(id))).toEqual([]);
  });

  it('the check above can fail: an answerValueSet pointing at a server is caught', () => {
    const x = structuredClone(q('marte-meo-session-review'));
    const themes = x.item?.find((i) => i.linkId === 'themes') as QuestionnaireItem;
    delete themes.answerOption;
    themes.answerValueSet = 'https://imh-bridge.example.no/fhir/ValueSet/change-process-theme';
    expect(unfillable(x)).toEqual(['themes']);
  });

  it('choice items ask for radio buttons (one answer) or check boxes (repeats), as on paper', () => {
    for (const id of QUESTIONNAIRE_IDS) {
      for (const i of choiceItems(q(id))) {
        const control = i.extension?.find((e) => e.url === EXT.itemControl)?.valueCodeableConcept?.coding?.[0];
        expect(control).toMatchObject({ system: 'http://hl7.org/fhir/questionnaire-item-control', code: i.repeats ? 'check-box' : 'radio-button' });
      }
    }
  });
});

describe('the bridge serves its CodeSystems and ValueSets', () => {
  const app = createApp({ allowSyntheticIds: true });
  const get = async (path: string) => {
    const res = await app.request(path);
    return { status: res.status, type: res.headers.get('content-type'), body: (await res.json()) as Record<string, unknown> };
  };
  const mappingFiles = (prefix: string) => readdirSync(resolve(root, 'mappings')).filter((f) => f.startsWith(`${prefix}-`) && f.endsWith('.json'));

  it('every mappings/CodeSystem-*.json at GET /v1/CodeSystem/{id}, as published', async () => {
    const files = mappingFiles('CodeSystem');
    expect(files.length).toBeGreaterThan(10);
    for (const f of files) {
      const published = JSON.parse(readFileSync(resolve(root, 'mappings', f), 'utf8')) as CodeSystem;
      const r = await get(`/v1/CodeSystem/${published.id}`);
      expect([r.status, r.type]).toEqual([200, 'application/fhir+json; charset=utf-8']);
      expect(r.body).toEqual(published);
    }
    const list = await get('/v1/CodeSystem');
    expect((list.body.entry as unknown[]).length).toBe(files.length);
  });

  it('every mappings/ValueSet-*.json at GET /v1/ValueSet/{id}, expanded to exactly the codes of its CodeSystem', async () => {
    const files = mappingFiles('ValueSet');
    for (const f of files) {
      const published = JSON.parse(readFileSync(resolve(root, 'mappings', f), 'utf8')) as ValueSet;
      const r = await get(`/v1/ValueSet/${published.id}`);
      expect(r.status).toBe(200);
      const { expansion, ...rest } = r.body as unknown as ValueSet;
      expect(rest).toEqual(published);
      const cs = codeSystem(published.compose?.include?.[0]?.system?.split('/CodeSystem/')[1] as string);
      expect(expansion?.contains?.map((c) => [c.system, c.code, c.display])).toEqual(cs.concept?.map((c) => [cs.url, c.code, c.display]));
      expect(expansion?.total).toBe(cs.concept?.length);
      expect(errors(r.body as unknown as Resource)).toEqual([]);
    }
    expect(((await get('/v1/ValueSet')).body.entry as unknown[]).length).toBe(files.length);
  });

  it('the session review options are the expansion a client would get from the ValueSet route', async () => {
    const vs = (await get('/v1/ValueSet/change-process-theme')).body as unknown as ValueSet;
    const inline = item('marte-meo-session-review', 'themes').answerOption?.map((o) => o.valueCoding?.code);
    expect(vs.expansion?.contains?.map((c) => c.code)).toEqual(inline);
  });

  it('an unknown id is a 404 OperationOutcome', async () => {
    for (const path of ['/v1/CodeSystem/nope', '/v1/ValueSet/nope']) {
      const r = await get(path);
      expect([r.status, r.body.resourceType]).toEqual([404, 'OperationOutcome']);
    }
  });

  it('the routes are in the OpenAPI document and need only a valid token', () => {
    const paths = (openApiDocument() as { paths: Record<string, unknown> }).paths;
    for (const p of ['/v1/CodeSystem', '/v1/CodeSystem/{id}', '/v1/ValueSet', '/v1/ValueSet/{id}']) expect(paths[p]).toBeDefined();
    expect(accessFor('GET', '/v1/ValueSet/score-band')).toBe('any');
  });
});
