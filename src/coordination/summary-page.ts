/**
 * The coordination summary as one self-contained HTML page: what a psychiatrist opens from the
 * EHR or prints. Drawn from the same model as the FHIR document's narratives (summary.ts), so
 * it shows exactly the consented parts and nothing else.
 *
 * - No script, no external fonts, styles or images: one inline `<style>` and inline SVG, so it
 *   renders under `Content-Security-Policy: default-src 'none'; style-src 'unsafe-inline';
 *   img-src data:` inside an EHR frame, and prints on A4 (`@page`, charts scale to the width).
 * - Accessible (WCAG 2.1 AA): `lang`, landmarks, headings in order, every chart an
 *   `role="img"` SVG with a title and a description, and ALSO a table with a caption and
 *   header cells; meaning never carried by colour alone (shapes, dash patterns, labels).
 * - Every text from the episode is escaped.
 */
import type { Episode } from '../domain/episode.ts';
import { NORMS } from '../instruments/norms.ts';
import {
  type AttendanceRow,
  attendanceLead,
  changeSentence,
  closingSentence,
  contactSentence,
  courseSentence,
  measureName,
  type ScoreSeries,
  type SessionCodes,
  type SummaryModel,
  type SummaryOptions,
  summaryModel,
} from './summary.ts';
import { esc, formatDate, formatNumber, label, type SummaryLang, shortDate, t } from './summary-text.ts';

/** The Content-Security-Policy the page is made for (and that an HTTP route should send with it). */
export const SUMMARY_PAGE_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:";

const CSS = `
@page { size: A4; margin: 14mm 12mm; }
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, "Noto Sans", sans-serif; color: #1a1a1a; background: #fff; line-height: 1.45; font-size: 15px; }
header, main, footer { max-width: 60rem; margin: 0 auto; padding: 0 1rem; }
header { border-bottom: 3px solid #1d4f7a; padding-top: 1rem; padding-bottom: .75rem; }
h1 { font-size: 1.45rem; margin: 0 0 .4rem; color: #10304d; }
h2 { font-size: 1.2rem; margin: 1.6rem 0 .5rem; color: #10304d; border-bottom: 1px solid #9bb3c9; padding-bottom: .2rem; }
h3 { font-size: 1.05rem; margin: 1.1rem 0 .4rem; }
p { margin: .35rem 0; }
.meta { color: #3d3d3d; font-size: .92rem; }
.contact { background: #eef4fa; border-left: 4px solid #1d4f7a; padding: .45rem .7rem; margin: .6rem 0 0; }
figure { margin: .6rem 0; break-inside: avoid; page-break-inside: avoid; }
figcaption { font-size: .92rem; margin-top: .2rem; }
svg { display: block; width: 100%; max-width: 46rem; height: auto; }
svg text { font-family: inherit; fill: #1a1a1a; }
table { border-collapse: collapse; margin: .4rem 0 .8rem; font-size: .9rem; break-inside: auto; }
caption { text-align: left; font-weight: 600; padding: .2rem 0; }
th, td { border: 1px solid #8a8a8a; padding: .2rem .45rem; text-align: left; vertical-align: top; }
th { background: #e9eef3; }
tr { break-inside: avoid; page-break-inside: avoid; }
.classification { font-weight: 600; }
ul { padding-left: 1.2rem; }
footer { margin-top: 2rem; border-top: 1px solid #9bb3c9; padding-top: .5rem; padding-bottom: 1rem; color: #3d3d3d; font-size: .85rem; }
@media print {
  body { font-size: 10.5pt; }
  header, main, footer { max-width: none; padding: 0; }
  h2 { break-after: avoid; page-break-after: avoid; }
  h3 { break-after: avoid; page-break-after: avoid; }
  .contact { background: none; }
}
`;

/** Band fills, light enough for dark text on them; the band is also named in the chart and the table. */
const BAND_FILL = ['#e6f2e6', '#fbf3d5', '#fde2c4', '#f8d0cc', '#efc1cf'];
const SERIES_STYLE = [
  { stroke: '#1d4f7a', dash: '', marker: 'circle' },
  { stroke: '#7a3b1d', dash: '6 4', marker: 'square' },
  { stroke: '#2f6b2f', dash: '2 3', marker: 'diamond' },
] as const;

const W = 720;
const num = (x: number) => String(Math.round(x * 10) / 10);
const dayMs = (d: string) => Date.parse(`${d.slice(0, 10)}T00:00:00Z`);

/** x positions for dates over the chart width (one date: the middle). */
function xScale(dates: string[], left: number, right: number): (d: string) => number {
  const ms = dates.map(dayMs);
  const lo = Math.min(...ms);
  const hi = Math.max(...ms);
  return (d: string) => (hi === lo ? (left + right) / 2 : left + ((dayMs(d) - lo) / (hi - lo)) * (right - left));
}

function marker(kind: string, x: number, y: number, stroke: string, filled = true): string {
  const fill = filled ? stroke : '#fff';
  if (kind === 'square') return `<rect x="${num(x - 4.5)}" y="${num(y - 4.5)}" width="9" height="9" fill="${fill}" stroke="${stroke}" stroke-width="1.5"/>`;
  if (kind === 'diamond')
    return `<path d="M${num(x)} ${num(y - 6)}L${num(x + 6)} ${num(y)}L${num(x)} ${num(y + 6)}L${num(x - 6)} ${num(y)}Z" fill="${fill}" stroke="${stroke}" stroke-width="1.5"/>`;
  if (kind === 'cross')
    return `<path d="M${num(x - 5)} ${num(y - 5)}L${num(x + 5)} ${num(y + 5)}M${num(x + 5)} ${num(y - 5)}L${num(x - 5)} ${num(y + 5)}" stroke="${stroke}" stroke-width="2.2"/>`;
  return `<circle cx="${num(x)}" cy="${num(y)}" r="5" fill="${fill}" stroke="${stroke}" stroke-width="1.5"/>`;
}

/** An SVG with its accessible name (title) and description. */
function svg(id: string, height: number, title: string, desc: string, body: string): string {
  return `<svg role="img" aria-labelledby="${id}-title" aria-describedby="${id}-desc" viewBox="0 0 ${W} ${height}" xmlns="http://www.w3.org/2000/svg"><title id="${id}-title">${esc(title)}</title><desc id="${id}-desc">${esc(desc)}</desc>${body}</svg>`;
}

function tableHtml(caption: string, head: string[], rows: string[][]): string {
  return `<table><caption>${esc(caption)}</caption><thead><tr>${head.map((h) => `<th scope="col">${esc(h)}</th>`).join('')}</tr></thead><tbody>${rows
    .map((r) => `<tr>${r.map((c, i) => (i === 0 ? `<th scope="row">${esc(c)}</th>` : `<td>${esc(c)}</td>`)).join('')}</tr>`)
    .join('')}</tbody></table>`;
}

interface LineSeries {
  name: string;
  points: { date: string; value: number }[];
}

/** A line chart over time: optional severity bands and cut-off, one or more series, labelled points. */
function lineChart(
  id: string,
  lang: SummaryLang,
  title: string,
  desc: string,
  series: LineSeries[],
  range: [number, number],
  bands?: { from: number; band: string }[],
  cutoff?: number,
): string {
  const H = 250;
  const top = 16;
  const bottom = H - (series.length > 1 ? 52 : 34);
  const left = 46;
  const right = bands ? W - 215 : W - 20;
  const dates = [...new Set(series.flatMap((s) => s.points.map((p) => p.date)))].sort();
  const x = xScale(dates, left + 20, right - 20);
  const [lo, hi] = range;
  const y = (v: number) => bottom - ((v - lo) / (hi - lo)) * (bottom - top);
  const parts: string[] = [];
  // Severity bands: tinted and named at the right.
  const clampY = (v: number) => Math.min(bottom, Math.max(top, y(v)));
  (bands ?? []).forEach((b, i, all) => {
    const next = all[i + 1];
    const upper = next ? next.from - 1 : hi;
    const yTop = clampY(upper + 0.5);
    const yBottom = clampY(b.from - 0.5);
    parts.push(`<rect x="${left}" y="${num(yTop)}" width="${right - left}" height="${num(yBottom - yTop)}" fill="${BAND_FILL[i % BAND_FILL.length]}"/>`);
    parts.push(`<text x="${right + 6}" y="${num((yTop + yBottom) / 2 + 4)}" font-size="12">${esc(label('band', b.band, lang))} (${b.from}–${upper})</text>`);
  });
  // Axes and ticks.
  parts.push(
    `<line x1="${left}" y1="${bottom}" x2="${right}" y2="${bottom}" stroke="#555"/><line x1="${left}" y1="${top}" x2="${left}" y2="${bottom}" stroke="#555"/>`,
  );
  // Band edges where there are bands; else every whole number of a short scale (PRFQ 1–7).
  const ticks = bands
    ? [...new Set([lo, ...bands.map((b) => b.from).filter((f) => f > lo), hi])]
    : hi - lo <= 10
      ? Array.from({ length: hi - lo + 1 }, (_, i) => lo + i)
      : [lo, hi];
  for (const v of ticks) parts.push(`<text x="${left - 6}" y="${num(y(v) + 4)}" font-size="11" text-anchor="end">${esc(formatNumber(v, lang))}</text>`);
  for (const d of dates) parts.push(`<text x="${num(x(d))}" y="${bottom + 16}" font-size="11" text-anchor="middle">${esc(shortDate(d, lang))}</text>`);
  if (cutoff !== undefined) {
    parts.push(
      `<line x1="${left}" y1="${num(y(cutoff - 0.5))}" x2="${right}" y2="${num(y(cutoff - 0.5))}" stroke="#8b0000" stroke-width="1.5" stroke-dasharray="8 4"/>`,
    );
    parts.push(
      `<text x="${left + 4}" y="${num(y(cutoff - 0.5) - 4)}" font-size="11">${esc(lang === 'nb' ? `klinisk grense ${cutoff}` : `clinical cut-off ${cutoff}`)}</text>`,
    );
  }
  series.forEach((s, i) => {
    const st = SERIES_STYLE[i % SERIES_STYLE.length] as (typeof SERIES_STYLE)[number];
    const pts = s.points.map((p) => `${num(x(p.date))},${num(y(p.value))}`).join(' ');
    parts.push(`<polyline points="${pts}" fill="none" stroke="${st.stroke}" stroke-width="2"${st.dash ? ` stroke-dasharray="${st.dash}"` : ''}/>`);
    for (const p of s.points) {
      parts.push(marker(st.marker, x(p.date), y(p.value), st.stroke));
      parts.push(`<text x="${num(x(p.date) + 8)}" y="${num(y(p.value) - 7)}" font-size="12" font-weight="600">${esc(formatNumber(p.value, lang))}</text>`);
    }
  });
  if (series.length > 1) {
    series.forEach((s, i) => {
      const st = SERIES_STYLE[i % SERIES_STYLE.length] as (typeof SERIES_STYLE)[number];
      const lx = left + 10 + i * 220;
      parts.push(
        `<line x1="${lx}" y1="${H - 8}" x2="${lx + 22}" y2="${H - 8}" stroke="${st.stroke}" stroke-width="2"${st.dash ? ` stroke-dasharray="${st.dash}"` : ''}/>${marker(st.marker, lx + 11, H - 8, st.stroke)}`,
      );
      parts.push(`<text x="${lx + 28}" y="${H - 4}" font-size="11">${esc(s.name)}</text>`);
    });
  }
  return svg(id, H, title, desc, parts.join(''));
}

function scoreFigure(s: ScoreSeries, lang: SummaryLang, id: string): string {
  const name = measureName(s, lang);
  const bandText = (v: number, band?: string) => `${formatNumber(v, lang)}${band ? ` (${label('band', band, lang)})` : ''}`;
  const desc =
    s.points.map((p) => `${formatDate(p.date, lang)}: ${bandText(p.value, p.band)}`).join('; ') + (s.outcome ? `. ${changeSentence(s.outcome, lang)}` : '');
  const cutoff = s.measure === 'total' ? NORMS[s.instrument]?.cutoff : undefined;
  const chart = lineChart(id, lang, lang === 'nb' ? `${name} over tid` : `${name} over time`, desc, [{ name, points: s.points }], s.range, s.bands, cutoff);
  const caption = s.outcome
    ? `<figcaption><span class="classification">${esc(t('change', lang))}:</span> ${esc(changeSentence(s.outcome, lang))}</figcaption>`
    : `<figcaption>${esc(lang === 'nb' ? 'Bare én måling: ingen endring å vurdere.' : 'One administration only: no change to assess.')}</figcaption>`;
  const head = s.bands ? [t('date', lang), t('score', lang), t('band', lang)] : [t('date', lang), t('score', lang)];
  const rows = s.points.map((p) => [formatDate(p.date, lang), formatNumber(p.value, lang), ...(s.bands ? [label('band', p.band ?? '', lang)] : [])]);
  return `<h3>${esc(name)}</h3><figure>${chart}${caption}</figure>${tableHtml(lang === 'nb' ? `${name}: skårer` : `${name}: scores`, head, rows)}`;
}

function scoresSection(m: SummaryModel, series: ScoreSeries[]): string {
  const { lang } = m;
  if (!series.length) return `<p>${esc(lang === 'nb' ? 'Ingen skåringer er registrert.' : 'No scores are recorded.')}</p>`;
  const parts: string[] = [];
  for (const inst of ['EPDS', 'PHQ-9', 'GAD-7'] as const) {
    const s = series.find((x) => x.instrument === inst && x.measure === 'total');
    if (s) parts.push(scoreFigure(s, lang, `chart-${inst.toLowerCase().replace(/[^a-z0-9]/g, '')}`));
  }
  const prfq = series.filter((x) => x.instrument === 'PRFQ');
  if (prfq.length) {
    const title = lang === 'nb' ? 'PRFQ-delskalaer over tid (gjennomsnitt 1–7)' : 'PRFQ subscales over time (mean 1–7)';
    const desc = prfq
      .map((s) => `${label('measure', s.measure, lang)}: ${s.points.map((p) => `${formatDate(p.date, lang)} ${formatNumber(p.value, lang)}`).join(', ')}`)
      .join('; ');
    const chart = lineChart(
      'chart-prfq',
      lang,
      title,
      desc,
      prfq.map((s) => ({ name: label('measure', s.measure, lang), points: s.points })),
      [1, 7],
    );
    const changes = prfq
      .filter((s) => s.outcome)
      .map((s) => `<li>${esc(`${label('measure', s.measure, lang)}: ${changeSentence(s.outcome as NonNullable<ScoreSeries['outcome']>, lang)}`)}</li>`);
    const dates = [...new Set(prfq.flatMap((s) => s.points.map((p) => p.date)))].sort();
    const rows = dates.map((d) => [
      formatDate(d, lang),
      ...prfq.map((s) => {
        const p = s.points.find((x) => x.date === d);
        return p ? formatNumber(p.value, lang) : '–';
      }),
    ]);
    parts.push(
      `<h3>PRFQ</h3><figure>${chart}${changes.length ? `<figcaption><ul>${changes.join('')}</ul></figcaption>` : ''}</figure>` +
        tableHtml(lang === 'nb' ? 'PRFQ: delskalaer' : 'PRFQ: subscales', [t('date', lang), ...prfq.map((s) => label('measure', s.measure, lang))], rows),
    );
  }
  const rf = series.find((x) => x.instrument === 'PDI-RF');
  if (rf) {
    const name = measureName(rf, lang);
    parts.push(
      `<h3>${esc(name)}</h3>` +
        tableHtml(
          name,
          [t('date', lang), t('score', lang)],
          rf.points.map((p) => [formatDate(p.date, lang), formatNumber(p.value, lang)]),
        ) +
        (rf.outcome ? `<p><span class="classification">${esc(t('change', lang))}:</span> ${esc(changeSentence(rf.outcome, lang))}</p>` : ''),
    );
  }
  return parts.join('');
}

const ATTENDANCE_MARK: Record<string, { marker: string; stroke: string; filled: boolean }> = {
  attended: { marker: 'circle', stroke: '#1d4f7a', filled: true },
  cancelled: { marker: 'cross', stroke: '#8b0000', filled: true },
  'no-show': { marker: 'square', stroke: '#7a3b1d', filled: false },
  planned: { marker: 'circle', stroke: '#555', filled: false },
};

function attendanceSection(m: SummaryModel, rows: AttendanceRow[]): string {
  const { lang } = m;
  const lead = attendanceLead(lang, rows);
  if (!rows.length) return `<p>${esc(lead)}</p>`;
  const H = 120;
  const x = xScale(
    rows.map((r) => r.date),
    40,
    W - 40,
  );
  const parts: string[] = [`<line x1="30" y1="50" x2="${W - 30}" y2="50" stroke="#555"/>`];
  rows.forEach((r, i) => {
    const mk = ATTENDANCE_MARK[r.status] ?? (ATTENDANCE_MARK.planned as { marker: string; stroke: string; filled: boolean });
    parts.push(marker(mk.marker, x(r.date), 50, mk.stroke, mk.filled));
    parts.push(`<text x="${num(x(r.date))}" y="${i % 2 ? 78 : 30}" font-size="11" text-anchor="middle">${esc(shortDate(r.date, lang))}</text>`);
  });
  (['attended', 'cancelled', 'no-show', 'planned'] as const).forEach((s, i) => {
    const mk = ATTENDANCE_MARK[s] as { marker: string; stroke: string; filled: boolean };
    parts.push(marker(mk.marker, 50 + i * 170, H - 12, mk.stroke, mk.filled));
    parts.push(`<text x="${62 + i * 170}" y="${H - 8}" font-size="11">${esc(label('attendance', s, lang))}</text>`);
  });
  const desc = rows.map((r) => `${formatDate(r.date, lang)}: ${label('attendance', r.status, lang)}`).join('; ');
  const chart = svg('chart-attendance', H, lang === 'nb' ? 'Oppmøte over tid' : 'Attendance over time', desc, parts.join(''));
  const table = tableHtml(
    lang === 'nb' ? 'Timer' : 'Sessions',
    [t('date', lang), t('kind', lang), t('place', lang), t('minutes', lang), t('status', lang)],
    rows.map((r) => [
      `${formatDate(r.date, lang)} ${r.time}`,
      label('kind', r.kind, lang),
      label('setting', r.setting, lang),
      String(r.minutes),
      label('attendance', r.status, lang) + (r.cancellationReason ? ` (${label('cancellation', r.cancellationReason, lang)})` : ''),
    ]),
  );
  return `<p>${esc(lead)}</p><figure>${chart}</figure>${table}`;
}

const THEME_ORDER = [
  'feeling-inadequate-or-disconnected',
  'discovering-infant-as-intentional',
  'becoming-agentic-and-interconnected',
  'challenged-by-own-mental-health',
];

function themesSection(m: SummaryModel, rows: SessionCodes[]): string {
  const { lang } = m;
  if (!rows.length) return `<p>${esc(lang === 'nb' ? 'Ingen temaer er registrert.' : 'No themes are recorded.')}</p>`;
  const rowH = 46;
  const top = 24;
  const H = top + THEME_ORDER.length * rowH + 24;
  const left = 40;
  const right = W - 30;
  const step = rows.length > 1 ? (right - left) / (rows.length - 1) : 0;
  const xAt = (i: number) => (rows.length > 1 ? left + i * step : (left + right) / 2);
  const yOf = (theme: string) => top + THEME_ORDER.indexOf(theme) * rowH + 22;
  const parts: string[] = [];
  THEME_ORDER.forEach((th) => {
    // Drawn after the path, with a white halo, so the path never covers the words (below).
    parts.push(`<line x1="${left - 30}" y1="${yOf(th)}" x2="${right + 20}" y2="${yOf(th)}" stroke="#b8b8b8" stroke-dasharray="2 3"/>`);
  });
  const path: string[] = [];
  rows.forEach((r, i) => {
    const ordered = [...r.codes].sort((a, b) => THEME_ORDER.indexOf(a) - THEME_ORDER.indexOf(b));
    for (const th of ordered) path.push(`${num(xAt(i))},${yOf(th)}`);
    parts.push(`<text x="${num(xAt(i))}" y="${H - 6}" font-size="11" text-anchor="middle">${esc(shortDate(r.date, lang))}</text>`);
  });
  parts.push(`<polyline points="${path.join(' ')}" fill="none" stroke="#1d4f7a" stroke-width="2.5"/>`);
  rows.forEach((r, i) => {
    for (const th of r.codes) parts.push(marker('circle', xAt(i), yOf(th), '#1d4f7a'));
  });
  THEME_ORDER.forEach((th) => {
    parts.push(
      `<text x="${left - 30}" y="${yOf(th) - 10}" font-size="12" stroke="#fff" stroke-width="4" paint-order="stroke" stroke-linejoin="round">${esc(label('theme', th, lang))}</text>`,
    );
  });
  const desc = rows.map((r) => `${formatDate(r.date, lang)}: ${r.codes.map((c) => label('theme', c, lang)).join(', ')}`).join('; ');
  const chart = svg(
    'chart-themes',
    H,
    lang === 'nb' ? 'Endringsprosessen som en vei gjennom de fire temaene' : 'The change process as a path through the four themes',
    desc,
    parts.join(''),
  );
  const table = tableHtml(
    lang === 'nb' ? 'Temaer per time' : 'Themes by session',
    [t('date', lang), t('theme', lang)],
    rows.map((r) => [formatDate(r.date, lang), r.codes.map((c) => label('theme', c, lang)).join('; ')]),
  );
  return `<figure>${chart}</figure>${table}`;
}

function focusSection(m: SummaryModel, rows: SessionCodes[]): string {
  const { lang } = m;
  if (!rows.length) return `<p>${esc(lang === 'nb' ? 'Ingen Marte Meo-elementer er registrert.' : 'No Marte Meo elements are recorded.')}</p>`;
  return tableHtml(
    t('focus', lang),
    [t('date', lang), t('elements', lang)],
    rows.map((r) => [formatDate(r.date, lang), r.codes.map((c) => label('focus', c, lang)).join('; ')]),
  );
}

function riskSection(m: SummaryModel): string {
  const { lang } = m;
  const risks = m.risks ?? [];
  if (!risks.length) return `<p>${esc(lang === 'nb' ? 'Ingen selvskadeledd er besvart over null.' : 'No self-harm item was answered above zero.')}</p>`;
  return tableHtml(
    lang === 'nb' ? 'Positive selvskadeledd og oppfølging' : 'Positive self-harm items and their follow-up',
    lang === 'nb' ? ['Skjema og dato', 'Flagg', 'Oppfølging hos', 'Frist', 'Status'] : ['Instrument and date', 'Flag', 'Follow-up by', 'Due', 'Status'],
    risks.map((r) => [
      `${r.instrument} ${formatDate(r.date, lang)} (${lang === 'nb' ? 'ledd' : 'item'} ${r.item})`,
      r.resolvedOn
        ? lang === 'nb'
          ? `ikke lenger aktivt fra ${formatDate(r.resolvedOn, lang)}`
          : `no longer active since ${formatDate(r.resolvedOn, lang)}`
        : lang === 'nb'
          ? 'aktivt'
          : 'active',
      m.primary.name,
      formatDate(r.due, lang),
      label('taskStatus', r.requestStatus, lang) +
        (r.requestLastModified ? ` (${formatDate(r.requestLastModified, lang)})` : '') +
        (r.requestStatusReason ? ` – ${r.requestStatusReason}` : ''),
    ]),
  );
}

function closingSection(m: SummaryModel): string {
  const { lang } = m;
  const c = m.closing;
  const goals = c.goals.length
    ? tableHtml(
        lang === 'nb' ? 'Mål' : 'Goals',
        [t('goal', lang), lang === 'nb' ? 'Startet' : 'Started', t('status', lang)],
        c.goals.map((g) => [g.description, formatDate(g.startOn, lang), `${label('goalStatus', g.status, lang)} (${formatDate(g.statusOn, lang)})`]),
      )
    : `<p>${esc(lang === 'nb' ? 'Ingen mål er registrert.' : 'No goals are recorded.')}</p>`;
  const closing = closingSentence(m) ?? (lang === 'nb' ? 'Veiledningen er ikke avsluttet.' : 'Guidance has not ended.');
  const rec = c.recommendation ? `<p><strong>${esc(lang === 'nb' ? 'Anbefaling' : 'Recommendation')}:</strong> ${esc(c.recommendation)}</p>` : '';
  return `${goals}<p>${esc(closing)}</p>${rec}`;
}

const section = (id: string, title: string, body: string) => `<section aria-labelledby="h-${id}"><h2 id="h-${id}">${esc(title)}</h2>${body}</section>`;

/** The page of a summary model (see the module comment). */
export function renderSummaryModel(m: SummaryModel): string {
  const { lang } = m;
  const born = lang === 'nb' ? `født ${formatDate(m.parent.birthDate, lang)}` : `born ${formatDate(m.parent.birthDate, lang)}`;
  const made =
    lang === 'nb'
      ? `Fra ${m.clinic.name} til ${m.primary.name}, laget ${formatDate(m.at, lang)}. Delt etter forelderens samtykke.`
      : `From ${m.clinic.name} to ${m.primary.name}, made ${formatDate(m.at, lang)}. Shared as the parent's consent allows.`;
  const sections: string[] = [];
  if (m.attendance) sections.push(section('attendance', t('attendance', lang), attendanceSection(m, m.attendance)));
  if (m.focus) sections.push(section('focus-areas', t('focus', lang), focusSection(m, m.focus)));
  if (m.themes) sections.push(section('themes', t('themes', lang), themesSection(m, m.themes)));
  if (m.scores) sections.push(section('scores', t('scores', lang), scoresSection(m, m.scores)));
  if (m.risks) sections.push(section('risk-flags', t('risk', lang), riskSection(m)));
  sections.push(section('summary', t('summary', lang), closingSection(m)));
  sections.push(section('contact', t('contact', lang), `<p>${esc(courseSentence(m))}</p><p>${esc(contactSentence(m))}</p>`));
  return `<!DOCTYPE html>
<html lang="${lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(`${m.title} – ${m.parent.name}`)}</title>
<style>${CSS}</style>
</head>
<body>
<header>
<h1>${esc(m.title)}</h1>
<p><strong>${esc(m.parent.name)}</strong>, ${esc(born)}</p>
<p>${esc(courseSentence(m))}</p>
<p class="contact">${esc(contactSentence(m))}</p>
<p class="meta">${esc(made)}</p>
</header>
<main>
${sections.join('\n')}
</main>
<footer>
<p>${esc(lang === 'nb' ? 'Laget av imh-bridge fra klinikkens journal. Det signerte FHIR-dokumentet med samme innhold kan hentes som application/fhir+json.' : "Made by imh-bridge from the clinic's record. The signed FHIR document with the same content is available as application/fhir+json.")}</p>
</footer>
</body>
</html>
`;
}

/**
 * The coordination summary of a parsed episode as one HTML page (see the module comment).
 * Throws the OperationOutcomeError of a refused summary, like `buildSummary`.
 */
export function renderSummaryPage(e: Episode, opts: SummaryOptions): string {
  return renderSummaryModel(summaryModel(e, opts));
}
