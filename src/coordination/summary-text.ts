/**
 * Words of the coordination summary in Norwegian bokmål and English: labels for the codes the
 * episode format uses, dates written as each language writes them, and HTML escaping. Shared by
 * the FHIR document's narratives (summary.ts) and the page (summary-page.ts), so both say the same.
 */
import type { ChangeClassification } from '../instruments/outcomes.ts';
import { round2 } from '../instruments/scoring.ts';

export type SummaryLang = 'nb' | 'en';

type Labels = Record<string, { nb: string; en: string }>;

const MONTHS = {
  nb: ['januar', 'februar', 'mars', 'april', 'mai', 'juni', 'juli', 'august', 'september', 'oktober', 'november', 'desember'],
  en: ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'],
};

/**
 * A calendar date (`2026-05-04`, or the date part of a date-time) as the language writes it:
 * `4. mai 2026` (bokmål), `4 May 2026` (English). Written out here rather than with Intl, so the
 * text does not depend on the ICU data of the runtime (the document is byte-stable).
 */
export function formatDate(date: string, lang: SummaryLang): string {
  const [y, m, d] = date.slice(0, 10).split('-').map(Number) as [number, number, number];
  const month = MONTHS[lang][m - 1] as string;
  return lang === 'nb' ? `${d}. ${month} ${y}` : `${d} ${month} ${y}`;
}

/** A short date for chart axes: `4.5.26` / `4 May`. */
export function shortDate(date: string, lang: SummaryLang): string {
  const [y, m, d] = date.slice(0, 10).split('-').map(Number) as [number, number, number];
  return lang === 'nb' ? `${d}.${m}.${String(y).slice(2)}` : `${d} ${(MONTHS.en[m - 1] as string).slice(0, 3)} ${String(y).slice(2)}`;
}

/** A number as the language writes it (decimal comma in bokmål, true minus sign). */
export function formatNumber(n: number, lang: SummaryLang): string {
  const s = String(round2(n));
  const signed = s.startsWith('-') ? `\u2212${s.slice(1)}` : s;
  return lang === 'nb' ? signed.replace('.', ',') : signed;
}

/** Full months from `birthDate` to `onDate` (both calendar dates). */
export function ageInMonths(birthDate: string, onDate: string): number {
  const [by, bm, bd] = birthDate.split('-').map(Number) as [number, number, number];
  const [y, m, d] = onDate.slice(0, 10).split('-').map(Number) as [number, number, number];
  let months = (y - by) * 12 + (m - bm);
  if (d < bd) months -= 1;
  return Math.max(0, months);
}

const L = {
  kind: {
    assessment: { nb: 'Kartleggingssamtale', en: 'Assessment session' },
    filming: { nb: 'Filming', en: 'Filming session' },
    review: { nb: 'Veiledning på film', en: 'Review session' },
    'follow-up': { nb: 'Oppfølging', en: 'Follow-up session' },
  },
  setting: {
    clinic: { nb: 'på klinikken', en: 'at the clinic' },
    home: { nb: 'hjemme', en: 'in the home' },
    'video-call': { nb: 'videosamtale', en: 'video call' },
  },
  attendance: {
    planned: { nb: 'Planlagt', en: 'Planned' },
    attended: { nb: 'Møtt', en: 'Attended' },
    cancelled: { nb: 'Avlyst', en: 'Cancelled' },
    'no-show': { nb: 'Ikke møtt', en: 'Did not attend' },
  },
  cancellation: {
    'parent-ill': { nb: 'forelder syk', en: 'parent ill' },
    'infant-ill': { nb: 'barnet sykt', en: 'infant ill' },
    clinic: { nb: 'avlyst av klinikken', en: 'cancelled by the clinic' },
    other: { nb: 'annen grunn', en: 'other reason' },
  },
  focus: {
    'attuning-atmosphere': { nb: 'Avstemt og god atmosfære', en: 'Attuning and pleasant atmosphere' },
    'following-initiative': { nb: 'Å følge barnets initiativ', en: "Following the infant's initiative" },
    confirming: { nb: 'Bekrefte', en: 'Confirming' },
    naming: { nb: 'Sette ord på', en: 'Naming' },
    'waiting-turn-taking': { nb: 'Vente og turtaking', en: 'Waiting and turn-taking' },
    'sharing-joy': { nb: 'Dele glede', en: 'Sharing joy' },
    'marking-start-end': { nb: 'Markere start og slutt', en: 'Marking start and end' },
    'introducing-world': { nb: 'Introdusere verden', en: 'Introducing the world' },
    'positive-leading': { nb: 'Positiv ledelse', en: 'Positive leading' },
    'friendly-face-tone': { nb: 'Vennlig ansikt og stemme', en: 'Friendly face and tone of voice' },
  },
  theme: {
    'feeling-inadequate-or-disconnected': { nb: 'Føler seg utilstrekkelig eller frakoblet', en: 'Feeling inadequate or disconnected' },
    'discovering-infant-as-intentional': { nb: 'Oppdager barnet som et eget subjekt med intensjoner', en: 'Discovering the infant as intentional' },
    'becoming-agentic-and-interconnected': { nb: 'Blir handlekraftig og i samspill', en: 'Becoming agentic and interconnected' },
    'challenged-by-own-mental-health': { nb: 'Utfordret av egen psykiske helse', en: 'Challenged by own mental health' },
  },
  band: {
    'below-threshold': { nb: 'under terskel', en: 'below threshold' },
    'possible-depression': { nb: 'mulig depresjon', en: 'possible depression' },
    'probable-depression': { nb: 'sannsynlig depresjon', en: 'probable depression' },
    minimal: { nb: 'minimal', en: 'minimal' },
    mild: { nb: 'mild', en: 'mild' },
    moderate: { nb: 'moderat', en: 'moderate' },
    'moderately-severe': { nb: 'moderat alvorlig', en: 'moderately severe' },
    severe: { nb: 'alvorlig', en: 'severe' },
  },
  classification: {
    recovered: { nb: 'bedring til under klinisk grense (reliabel)', en: 'recovered (reliable change below the clinical cut-off)' },
    improved: { nb: 'reliabel bedring', en: 'reliably improved' },
    unchanged: { nb: 'ingen reliabel endring', en: 'no reliable change' },
    deteriorated: { nb: 'reliabel forverring', en: 'reliably deteriorated' },
    'not-classified': { nb: 'ikke klassifisert (ingen publiserte normer)', en: 'not classified (no published norms)' },
  } satisfies Record<ChangeClassification, { nb: string; en: string }>,
  measure: {
    total: { nb: 'totalskår', en: 'total score' },
    'prfq-pre-mentalizing': { nb: 'Førmentaliserende modus', en: 'Pre-mentalizing modes' },
    'prfq-certainty-about-mental-states': { nb: 'Sikkerhet om mentale tilstander', en: 'Certainty about mental states' },
    'prfq-interest-and-curiosity': { nb: 'Interesse og nysgjerrighet', en: 'Interest and curiosity' },
    'pdi-rf': { nb: 'Refleksiv funksjon (PDI)', en: 'Reflective functioning (PDI)' },
  },
  goalStatus: {
    proposed: { nb: 'foreslått', en: 'proposed' },
    'in-progress': { nb: 'pågår', en: 'in progress' },
    achieved: { nb: 'nådd', en: 'achieved' },
    'not-achieved': { nb: 'ikke nådd', en: 'not achieved' },
    cancelled: { nb: 'avbrutt', en: 'cancelled' },
  },
  closingReason: {
    completed: { nb: 'fullført', en: 'completed' },
    'dropped-out': { nb: 'avbrutt av familien', en: 'dropped out' },
    moved: { nb: 'familien flyttet', en: 'the family moved' },
    'referred-on': { nb: 'henvist videre', en: 'referred on' },
  },
  episodeStatus: {
    planned: { nb: 'planlagt', en: 'planned' },
    active: { nb: 'pågår', en: 'ongoing' },
    finished: { nb: 'avsluttet', en: 'finished' },
    cancelled: { nb: 'avbrutt', en: 'cancelled' },
  },
  cgi: {
    '1': { nb: 'svært mye bedre', en: 'very much improved' },
    '2': { nb: 'mye bedre', en: 'much improved' },
    '3': { nb: 'litt bedre', en: 'minimally improved' },
    '4': { nb: 'uendret', en: 'no change' },
    '5': { nb: 'litt verre', en: 'minimally worse' },
    '6': { nb: 'mye verre', en: 'much worse' },
    '7': { nb: 'svært mye verre', en: 'very much worse' },
  },
  taskStatus: {
    draft: { nb: 'utkast', en: 'draft' },
    requested: { nb: 'sendt, ikke behandlet ennå', en: 'sent, not yet acted on' },
    received: { nb: 'mottatt', en: 'received' },
    accepted: { nb: 'akseptert', en: 'accepted' },
    rejected: { nb: 'avvist', en: 'rejected' },
    ready: { nb: 'klar', en: 'ready' },
    cancelled: { nb: 'kansellert', en: 'cancelled' },
    'in-progress': { nb: 'under arbeid', en: 'in progress' },
    'on-hold': { nb: 'satt på vent', en: 'on hold' },
    failed: { nb: 'mislyktes', en: 'failed' },
    completed: { nb: 'fullført', en: 'completed' },
    'entered-in-error': { nb: 'registrert ved en feil', en: 'entered in error' },
  },
  profession: {
    psychologist: { nb: 'psykolog', en: 'psychologist' },
    psychiatrist: { nb: 'psykiater', en: 'psychiatrist' },
    'clinical-social-worker': { nb: 'klinisk sosionom', en: 'clinical social worker' },
    nurse: { nb: 'sykepleier', en: 'nurse' },
    physiotherapist: { nb: 'fysioterapeut', en: 'physiotherapist' },
    other: { nb: 'behandler', en: 'clinician' },
  },
} satisfies Record<string, Labels>;

export type LabelGroup = keyof typeof L;

/** The label of `code` in `group`; the code itself where there is none (never throws on text). */
export function label(group: LabelGroup, code: string, lang: SummaryLang): string {
  const entry = (L[group] as Labels)[code];
  return entry ? entry[lang] : code;
}

/** Fixed phrases of the summary. */
export const T = {
  title: { nb: 'Koordineringsoppsummering: videoveiledning (Marte Meo)', en: 'Coordination summary: video guidance (Marte Meo)' },
  attendance: { nb: 'Forløp og oppmøte', en: 'Course of guidance and attendance' },
  focus: { nb: 'Marte Meo-elementer det er arbeidet med', en: 'Marte Meo elements worked on' },
  themes: { nb: 'Forelderens endringsprosess slik terapeuten ser den', en: "The parent's change process as the therapist sees it" },
  scores: { nb: 'Skårer over tid', en: 'Scores over time' },
  risk: { nb: 'Risiko og oppfølging', en: 'Risk and follow-up' },
  summary: { nb: 'Mål, avslutning og anbefaling', en: 'Goals, closing and recommendation' },
  contact: { nb: 'Kontakt', en: 'Contact' },
  date: { nb: 'Dato', en: 'Date' },
  session: { nb: 'Time', en: 'Session' },
  kind: { nb: 'Type', en: 'Kind' },
  place: { nb: 'Sted', en: 'Setting' },
  minutes: { nb: 'Minutter', en: 'Minutes' },
  status: { nb: 'Status', en: 'Status' },
  score: { nb: 'Skår', en: 'Score' },
  band: { nb: 'Alvorlighetsgrad', en: 'Severity band' },
  measure: { nb: 'Mål', en: 'Measure' },
  first: { nb: 'Første', en: 'First' },
  latest: { nb: 'Siste', en: 'Latest' },
  change: { nb: 'Endring', en: 'Change' },
  rci: { nb: 'RCI', en: 'RCI' },
  classification: { nb: 'Klassifisering', en: 'Classification' },
  theme: { nb: 'Tema', en: 'Theme' },
  elements: { nb: 'Elementer', en: 'Elements' },
  goal: { nb: 'Mål', en: 'Goal' },
} as const;

export const t = (key: keyof typeof T, lang: SummaryLang): string => T[key][lang];

/** Escapes text for HTML and XHTML content and attribute values (all five special characters). */
export function esc(text: string | number): string {
  return String(text).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);
}
