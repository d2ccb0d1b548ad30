/**
 * The sandbox in a browser: when a GET's `Accept` prefers text/html over JSON
 * (https://www.rfc-editor.org/rfc/rfc9110#name-accept), the answer is a small HTML page with
 * the same resource pretty-printed, its references, fullUrls and paging links as links, and
 * an index of the resource types held at the base. Every value is escaped; only URLs under
 * the sandbox's own base become links. JSON clients never see any of this.
 */
import type { Resource } from '@medplum/fhirtypes';

const JSON_TYPES = ['application/fhir+json', 'application/json'];

/** The weight `accept` gives `type`: the most specific matching range wins (RFC 9110 §12.5.1). */
function weight(ranges: { type: string; q: number }[], type: string): number {
  const [major] = type.split('/');
  const exact = ranges.find((r) => r.type === type);
  const group = ranges.find((r) => r.type === `${major}/*`);
  const any = ranges.find((r) => r.type === '*/*');
  return (exact ?? group ?? any)?.q ?? 0;
}

/** Whether an Accept header prefers HTML to every JSON form (a browser's does; `*\/*` does not). */
export function prefersHtml(accept: string | undefined): boolean {
  if (!accept) return false;
  const ranges = accept.split(',').map((part) => {
    const [type = '', ...params] = part.split(';').map((s) => s.trim().toLowerCase());
    const q = params.find((p) => p.startsWith('q='));
    const value = q ? Number.parseFloat(q.slice(2)) : 1;
    return { type, q: Number.isFinite(value) ? value : 0 };
  });
  const html = weight(ranges, 'text/html');
  return html > 0 && JSON_TYPES.every((t) => html > weight(ranges, t));
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
/** Text and attribute values escaped for HTML. */
export const escapeHtml = (s: string): string => s.replace(/[&<>"']/g, (c) => ESCAPES[c] as string);

const REFERENCE = /^[A-Z][A-Za-z]+\/[A-Za-z0-9\-.]{1,64}(\/_history\/[A-Za-z0-9\-.]{1,64})?$/;

/** Where a string value should link to, if anywhere: only the sandbox's own URLs. */
function hrefOf(key: string | undefined, value: string, baseUrl: string): string | undefined {
  if (value === baseUrl || value.startsWith(`${baseUrl}/`) || value.startsWith(`${baseUrl}?`)) return new URL(value).pathname + new URL(value).search;
  if ((key === 'reference' || key === 'location') && REFERENCE.test(value)) return `${new URL(baseUrl).pathname}/${value}`;
  return undefined;
}

/** `value` as JSON.stringify(value, null, 2) would print it, escaped, with links. */
function render(value: unknown, baseUrl: string, indent: string, key?: string): string {
  if (value === null || typeof value !== 'object') {
    const text = escapeHtml(JSON.stringify(value) ?? 'null');
    if (typeof value !== 'string') return `<span class="v">${text}</span>`;
    const href = hrefOf(key, value, baseUrl);
    return href ? `<a href="${escapeHtml(href)}">${text}</a>` : `<span class="s">${text}</span>`;
  }
  const inner = `${indent}  `;
  if (Array.isArray(value)) {
    if (value.length === 0) return '[]';
    return `[\n${value.map((v) => inner + render(v, baseUrl, inner, key)).join(',\n')}\n${indent}]`;
  }
  const entries = Object.entries(value as Record<string, unknown>);
  if (entries.length === 0) return '{}';
  return `{\n${entries.map(([k, v]) => `${inner}<span class="k">${escapeHtml(JSON.stringify(k))}</span>: ${render(v, baseUrl, inner, k)}`).join(',\n')}\n${indent}}`;
}

const STYLE = `body{font:14px/1.45 system-ui,sans-serif;margin:1.5rem;color:#1b1b1b}
nav{margin-bottom:1rem}nav a{margin-right:.25rem}
pre{font:13px/1.45 ui-monospace,monospace;background:#f6f8fa;padding:1rem;overflow:auto}
.k{color:#0b4f8a}.s{color:#1a6b2a}.v{color:#8a3b0b}.status{color:#555}
table{border-collapse:collapse}td,th{padding:.2rem .8rem;text-align:left;border-bottom:1px solid #ddd}`;

/** Breadcrumb links from the base to the current path. */
function crumbs(baseUrl: string, path: string): string {
  const basePath = new URL(baseUrl).pathname;
  const rest = path.startsWith(basePath) ? path.slice(basePath.length).split('/').filter(Boolean) : [];
  const links = [`<a href="${escapeHtml(basePath)}">sandbox FHIR R4</a>`];
  let at = basePath;
  for (const segment of rest) {
    at += `/${segment}`;
    links.push(`<a href="${escapeHtml(at)}">${escapeHtml(decodeURIComponent(segment))}</a>`);
  }
  return links.join(' / ');
}

function page(title: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>${STYLE}</style>
</head>
<body>
${body}
</body>
</html>
`;
}

/** A resource (or OperationOutcome) as a readable page: pretty-printed, with links. */
export function resourcePage(resource: Resource, status: number, baseUrl: string, pathAndQuery: string): string {
  const [path = '', query] = pathAndQuery.split('?');
  const json = `${path}?${new URLSearchParams([...new URLSearchParams(query ?? '')].filter(([k]) => k !== '_format').concat([['_format', 'json']]))}`;
  const title = `${resource.resourceType}${resource.id ? `/${resource.id}` : ''} · sandbox FHIR R4`;
  return page(
    title,
    `<nav>${crumbs(baseUrl, path)} <span class="status">· ${status}</span> · <a href="${escapeHtml(json)}">JSON</a></nav>
<pre>${render(resource, baseUrl, '')}</pre>`,
  );
}

/** The base: each resource type held, with its count, linking to its search. */
export function indexPage(counts: Record<string, number>, baseUrl: string): string {
  const basePath = new URL(baseUrl).pathname;
  const rows = Object.entries(counts)
    .filter(([, n]) => n > 0)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([type, n]) => `<tr><td><a href="${escapeHtml(`${basePath}/${type}`)}">${escapeHtml(type)}</a></td><td>${n}</td></tr>`)
    .join('\n');
  return page(
    'sandbox FHIR R4',
    `<nav>${crumbs(baseUrl, basePath)} · <a href="${escapeHtml(`${basePath}/metadata`)}">CapabilityStatement</a></nav>
<h1>Sandbox FHIR R4 server</h1>
<p>A local development and test server; data is held in memory. Base: <code>${escapeHtml(baseUrl)}</code></p>
${rows ? `<table><thead><tr><th>Resource type</th><th>Resources</th></tr></thead><tbody>\n${rows}\n</tbody></table>` : '<p>No resources yet.</p>'}`,
  );
}
