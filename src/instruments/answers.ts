/**
 * Raw answers as the episode format sends them (EPDS: position 0–3 top to bottom; PHQ-9 and
 * GAD-7: 0–3; PRFQ: 1–7) ⇄ the answerOption Codings of the published Questionnaires.
 * Everything here reads `definitions.ts`, so the episode path, the QuestionnaireResponse path
 * and the Questionnaires agree on codes. Matching is on `system|code`, never on display.
 */
import type { Coding } from '@medplum/fhirtypes';
import { INSTRUMENTS, type InstrumentDefinition, type InstrumentId } from './definitions.ts';

function itemsDefinition(instrument: InstrumentId, item: string): InstrumentDefinition {
  const def = INSTRUMENTS[instrument];
  if (!def) throw new Error(`unknown instrument ${instrument}`);
  if (!def.items.includes(item)) throw new Error(`${instrument} has no item ${JSON.stringify(item)}`);
  return def;
}

/**
 * The answerOption Coding for raw answer `raw` to `item` (without the score extension; the
 * score is on the Questionnaire's answerOption). Throws when the item does not exist or `raw`
 * is not an integer in the instrument's range.
 */
export function answerCoding(instrument: InstrumentId, item: string, raw: number): Coding {
  const def = itemsDefinition(instrument, item);
  const list = def.answerList;
  if (!list) throw new Error(`${instrument} has no answer options`);
  if (!Number.isInteger(raw) || raw < def.min || raw > def.max) {
    throw new Error(`${instrument} item ${item}: answer ${raw} is outside ${def.min}–${def.max}`);
  }
  const option = list.options[raw - def.min];
  if (!option) throw new Error(`${instrument} item ${item}: no answer option for ${raw}`);
  return { system: list.system, code: option.code, display: option.display };
}

/**
 * The raw answer (as the episode format sends it) that `answer` stands for, matched on
 * system and code. `undefined` when the instrument has no such item or `answer` is not one of
 * the item's options.
 */
export function rawAnswer(instrument: InstrumentId, item: string, answer: Coding): number | undefined {
  const def = INSTRUMENTS[instrument];
  const list = def?.answerList;
  if (!def || !list || !def.items.includes(item) || answer.system !== list.system) return undefined;
  const i = list.options.findIndex((o) => o.code === answer.code);
  return i < 0 ? undefined : def.min + i;
}

/**
 * Code of an item: its LOINC code where one was verified (PHQ-9, GAD-7), else our
 * CodeSystem `instrument-item` (EPDS, PRFQ). `undefined` for an item the instrument lacks.
 */
export function itemCode(instrument: InstrumentId, item: string): Coding | undefined {
  const code = INSTRUMENTS[instrument]?.itemCodes?.[item];
  return code ? { ...code } : undefined;
}
