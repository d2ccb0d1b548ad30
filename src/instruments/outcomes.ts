/**
 * Outcomes over time: for each instrument given two or more times in an episode, the first
 * and the latest score, the change, and the Jacobson & Truax (1991) reliable change index with
 * the clinically significant change classification. Scores come from the scoring engine
 * (`score()`), so they are the numbers the score Observations carry; the published values
 * behind the classification are in `norms.ts`, each with its citation.
 */
import type { CodeSystem, Coding, Parameters, ParametersParameter } from '@medplum/fhirtypes';
import changeClassification from '../../mappings/CodeSystem-change-classification.json' with { type: 'json' };
import instrumentScore from '../../mappings/CodeSystem-instrument-score.json' with { type: 'json' };
import type { Assessment, Episode } from '../domain/episode.ts';
import { INSTRUMENTS, type InstrumentId } from './definitions.ts';
import { type Direction, type Gender, type MeasureNorms, NORMS, RELIABLE_Z, sDiff } from './norms.ts';
import { round2, score } from './scoring.ts';

export interface OutcomeSeriesPoint {
  assessmentId: string;
  date: string;
  value: number;
}

export type ChangeClassification = 'recovered' | 'improved' | 'unchanged' | 'deteriorated' | 'not-classified';

export interface InstrumentOutcome {
  instrument: InstrumentId;
  /** 'total', a subscale code, or 'pdi-rf'. */
  measure: string;
  /** The code the score Observation uses (LOINC for totals, our `instrument-score` otherwise). */
  code: Coding;
  administrations: number;
  first: OutcomeSeriesPoint;
  latest: OutcomeSeriesPoint;
  /** latest − first (two decimals for subscale means). */
  change: number;
  direction: Direction;
  /** Jacobson & Truax 1991: (x2 − x1) / Sdiff, Sdiff = √(2·SE²), SE = SD·√(1 − r). */
  rci?: number;
  /** The smallest reliable change, in score points (1.96·Sdiff, or a published criterion). */
  reliableChangeThreshold?: number;
  /** Lowest clinical score (lower-is-better measures), when a cut-off is published. */
  cutoff?: number;
  classification: ChangeClassification;
  /** Citation keys (`norms.ts`) of the values used, comma-separated. */
  source?: string;
}

interface Series {
  instrument: InstrumentId;
  measure: string;
  /** Key into NORMS. */
  normsKey: string;
  code: Coding;
  points: OutcomeSeriesPoint[];
}

const SUBSCALE_SYSTEM = (instrumentScore as unknown as CodeSystem).url as string;
const CLASSIFICATION_SYSTEM = (changeClassification as unknown as CodeSystem).url as string;

function scoreCoding(code: string): Coding {
  const concept = (instrumentScore as unknown as CodeSystem).concept?.find((c) => c.code === code);
  if (!concept) throw new Error(`code ${code} is not in CodeSystem instrument-score`);
  return { system: SUBSCALE_SYSTEM, code, ...(concept.display ? { display: concept.display } : {}) };
}

/** The Coding for a classification in our CodeSystem `change-classification`. */
export function classificationCoding(code: ChangeClassification): Coding {
  const concept = (changeClassification as unknown as CodeSystem).concept?.find((c) => c.code === code);
  if (!concept) throw new Error(`code ${code} is not in CodeSystem change-classification`);
  return { system: CLASSIFICATION_SYSTEM, code, ...(concept.display ? { display: concept.display } : {}) };
}

/** Orders administrations by completedOn, then assessmentId (code-unit order). */
function byDateThenId(a: Assessment, b: Assessment): number {
  if (a.completedOn !== b.completedOn) return a.completedOn < b.completedOn ? -1 : 1;
  return a.assessmentId < b.assessmentId ? -1 : a.assessmentId > b.assessmentId ? 1 : 0;
}

/** Every measure an administration yields, with its value, keyed by measure. */
function measuresOf(a: Assessment): { measure: string; normsKey: string; code: Coding; value: number }[] {
  const def = INSTRUMENTS[a.instrument];
  const result = a.instrument === 'PDI-RF' ? score(a.instrument, undefined, a.score) : score(a.instrument, a.answers);
  const out: { measure: string; normsKey: string; code: Coding; value: number }[] = [];
  if (result.total && def.total) out.push({ measure: 'total', normsKey: a.instrument, code: { ...def.total.code }, value: result.total.value });
  for (const s of result.subscales ?? []) out.push({ measure: s.code, normsKey: s.code, code: scoreCoding(s.code), value: s.value });
  if (result.rating) out.push({ measure: result.rating.code, normsKey: result.rating.code, code: scoreCoding(result.rating.code), value: result.rating.value });
  return out;
}

function classify(
  change: number,
  first: number,
  latest: number,
  norms: MeasureNorms,
  gender: Gender,
): Pick<InstrumentOutcome, 'rci' | 'reliableChangeThreshold' | 'cutoff' | 'classification' | 'source'> {
  const rc = norms.reliableChange;
  if (!rc) return { classification: 'not-classified' };
  let rci: number | undefined;
  let threshold: number;
  let reliable: boolean;
  if (rc.kind === 'rci') {
    const sdiff = sDiff(rc.sd(gender), rc.r);
    rci = change / sdiff;
    threshold = RELIABLE_Z * sdiff;
    reliable = Math.abs(rci) >= RELIABLE_Z;
  } else {
    threshold = rc.points;
    reliable = Math.abs(change) >= rc.points;
  }
  const better = norms.direction === 'lower-is-better' ? change < 0 : change > 0;
  let classification: ChangeClassification = 'unchanged';
  if (reliable && better) {
    const clinical = (x: number) => norms.cutoff !== undefined && (norms.direction === 'lower-is-better' ? x >= norms.cutoff : x <= norms.cutoff);
    classification = norms.cutoff !== undefined && clinical(first) && !clinical(latest) ? 'recovered' : 'improved';
  } else if (reliable) {
    classification = 'deteriorated';
  }
  return {
    ...(rci !== undefined ? { rci } : {}),
    reliableChangeThreshold: threshold,
    ...(norms.cutoff !== undefined ? { cutoff: norms.cutoff } : {}),
    classification,
    ...(norms.sources?.length ? { source: norms.sources.join(', ') } : {}),
  };
}

/**
 * Outcomes of every measure with two or more administrations in the episode, in the order the
 * instruments are defined (EPDS, PHQ-9, GAD-7, PRFQ subscales, PDI-RF). Pure: the same episode
 * gives the same outcomes. Every assessment in the format is of the episode's one parent
 * (parent-reported, or clinician-rated for PDI-RF), so all of them count.
 */
export function episodeOutcomes(episode: Episode): InstrumentOutcome[] {
  const series = new Map<string, Series>();
  const ordered = [...(episode.assessments ?? [])].sort(byDateThenId);
  for (const a of ordered) {
    for (const m of measuresOf(a)) {
      const key = `${a.instrument}|${m.measure}`;
      let s = series.get(key);
      if (!s) series.set(key, (s = { instrument: a.instrument, measure: m.measure, normsKey: m.normsKey, code: m.code, points: [] }));
      s.points.push({ assessmentId: a.assessmentId, date: a.completedOn, value: m.value });
    }
  }
  const instrumentOrder = Object.keys(INSTRUMENTS) as InstrumentId[];
  const sorted = [...series.values()].sort((x, y) => instrumentOrder.indexOf(x.instrument) - instrumentOrder.indexOf(y.instrument));
  const out: InstrumentOutcome[] = [];
  for (const s of sorted) {
    if (s.points.length < 2) continue;
    const first = s.points[0] as OutcomeSeriesPoint;
    const latest = s.points[s.points.length - 1] as OutcomeSeriesPoint;
    const change = round2(latest.value - first.value);
    const norms = NORMS[s.normsKey];
    if (!norms) throw new Error(`no norms entry for ${s.normsKey}`);
    out.push({
      instrument: s.instrument,
      measure: s.measure,
      code: s.code,
      administrations: s.points.length,
      first,
      latest,
      change,
      direction: norms.direction,
      ...classify(change, first.value, latest.value, norms, episode.parent.gender),
    });
  }
  return out;
}

const point = (name: string, p: OutcomeSeriesPoint): ParametersParameter => ({
  name,
  part: [
    { name: 'assessmentId', valueString: p.assessmentId },
    { name: 'date', valueDate: p.date },
    { name: 'value', valueDecimal: round2(p.value) },
  ],
});

/**
 * One FHIR R4 Parameters resource with an `outcome` parameter per {@link InstrumentOutcome}.
 * Scores, RCI and threshold are given to two decimals: the published SDs and reliabilities behind
 * them carry no more precision (the classification is decided before rounding).
 */
export function outcomesParameters(episode: Episode): Parameters {
  const parameter = episodeOutcomes(episode).map(
    (o): ParametersParameter => ({
      name: 'outcome',
      part: [
        { name: 'instrument', valueString: o.instrument },
        { name: 'measure', valueString: o.measure },
        { name: 'code', valueCoding: o.code },
        { name: 'administrations', valueInteger: o.administrations },
        point('first', o.first),
        point('latest', o.latest),
        { name: 'change', valueDecimal: o.change },
        { name: 'direction', valueCode: o.direction },
        ...(o.rci !== undefined ? [{ name: 'rci', valueDecimal: round2(o.rci) }] : []),
        ...(o.reliableChangeThreshold !== undefined ? [{ name: 'reliableChangeThreshold', valueDecimal: round2(o.reliableChangeThreshold) }] : []),
        ...(o.cutoff !== undefined ? [{ name: 'cutoff', valueDecimal: o.cutoff }] : []),
        { name: 'classification', valueCoding: classificationCoding(o.classification) },
        ...(o.source !== undefined ? [{ name: 'source', valueString: o.source }] : []),
      ],
    }),
  );
  // FHIR JSON has no empty arrays: no outcomes, no `parameter`.
  return { resourceType: 'Parameters', ...(parameter.length ? { parameter } : {}) };
}

/** A number as a person reads it: at most two decimals, no trailing zeros, a real minus sign. */
const shown = (x: number): string => String(round2(x)).replace('-', '−');
const signed = (x: number): string => (x > 0 ? `+${shown(x)}` : shown(x));

/**
 * The outcomes as a plain-text table for a person (`imh-bridge outcomes --format table`): one row
 * per measure with first and latest score (and date), change, RCI to two decimals (— where the
 * measure has a point criterion or no published reliability) and the classification.
 */
export function formatOutcomesTable(outcomes: InstrumentOutcome[]): string {
  if (!outcomes.length) return 'no measure was given twice or more in this episode: nothing to compare\n';
  const header = ['instrument', 'measure', 'first', 'latest', 'change', 'RCI', 'classification'];
  const rows = outcomes.map((o) => [
    o.instrument,
    o.measure,
    `${shown(o.first.value)} (${o.first.date})`,
    `${shown(o.latest.value)} (${o.latest.date})`,
    signed(o.change),
    o.rci !== undefined ? o.rci.toFixed(2).replace('-', '−') : '—',
    classificationCoding(o.classification).display ?? o.classification,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] as number)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n') + '\n';
}
