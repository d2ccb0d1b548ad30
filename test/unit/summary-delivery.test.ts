/**
 * The coordination summary as the primary team's server receives it (shared contract
 * sharing.md, "summary"): a DocumentReference whose attachment is the (signed) FHIR document,
 * once the episode has ended and only when `summary` is shared; one identity per version of the
 * document; the end-of-guidance request focused on it; and the leak scan over everything,
 * decoded attachments included.
 */
import { createHash } from 'node:crypto';
import type { Bundle } from '@medplum/fhirtypes';
import { describe, expect, it } from 'vitest';
import { publicJwks } from '../../src/auth/jwks.ts';
import { SHARE_CLASSES } from '../../src/coordination/gate.ts';
import { sharePrimary, sharePrimaryParsed, summaryAsOf, summaryToDeliver } from '../../src/coordination/share.ts';
import { signSummary, verifySummary } from '../../src/coordination/summary.ts';
import { parseEpisode } from '../../src/domain/parse.ts';
import { DEV_IDENTITY } from '../../src/fhir/identity.ts';
import { submitEpisode } from '../../src/sync/deliver.ts';
import { MemoryStore } from '../../src/sync/memory-store.ts';
import { type AnyResource, resolve, resources } from '../fixtures/bundle.ts';
import { completed } from '../fixtures/examples.ts';
import { privateJwk } from '../fixtures/keys.ts';
import { leaks, scannedText } from '../fixtures/leaks.ts';

const AT = '2026-06-01T10:00:00Z';
const anyTarget = () => true;

const documentRefs = (b: Bundle) => resources(b, 'DocumentReference');
const decoded = (d: AnyResource): Bundle => JSON.parse(Buffer.from(d.content[0].attachment.data, 'base64').toString('utf8'));
const endedTask = (b: Bundle) => resources(b, 'Task').find((t) => t.code.coding[0].code === 'guidance-ended');

describe('the summary delivered to the primary team', () => {
  const e = completed();
  const { bundle } = sharePrimary(e, { at: AT, hasTarget: anyTarget });
  const [doc] = documentRefs(bundle) as [AnyResource];

  it('is a DocumentReference of the episode summary (LOINC 34133-9), current, about the parent, with the document as its content', () => {
    expect(documentRefs(bundle)).toHaveLength(1);
    expect(doc.status).toBe('current');
    expect(doc.type.coding[0]).toMatchObject({ system: 'http://loinc.org', code: '34133-9' });
    expect(doc.identifier[0].value).toMatch(/^VG-2026-0042\/summary\/[0-9a-f]{16}$/);
    expect(resolve(bundle, doc.subject).resourceType).toBe('Patient');
    expect(resolve(bundle, doc.context.encounter[0]).resourceType).toBe('EpisodeOfCare');
    const a = doc.content[0].attachment;
    expect(a.contentType).toBe('application/fhir+json');
    const bytes = Buffer.from(a.data, 'base64');
    expect(a.size).toBe(bytes.length);
    expect(a.hash).toBe(createHash('sha1').update(bytes).digest('base64'));
    const document = decoded(doc);
    expect(document.type).toBe('document');
    expect(a.creation).toBe(document.timestamp);
    expect(doc.date).toBe(document.timestamp);
    expect(document).toEqual(summaryToDeliver(parseEpisode(e), { at: AT, hasTarget: anyTarget, identity: DEV_IDENTITY }));
    // Dated by the episode's latest fact, not by the moment of sending.
    expect(document.timestamp).toBe(summaryAsOf(parseEpisode(e)));
  });

  it('is what the end-of-guidance request points at', () => {
    expect(endedTask(bundle)?.focus).toEqual({ reference: bundle.entry?.find((x) => x.resource === doc)?.fullUrl });
  });

  it("is written by conditional update on its version's identifier, so a re-send of the same version changes nothing", () => {
    const entry = bundle.entry?.find((x) => x.resource === doc);
    expect(entry?.request).toEqual({
      method: 'PUT',
      url: `DocumentReference?identifier=${encodeURIComponent(doc.identifier[0].system)}|${encodeURIComponent(doc.identifier[0].value)}`,
    });
    const later = sharePrimary(e, { at: '2026-09-01T08:00:00Z', hasTarget: anyTarget }).bundle;
    expect(documentRefs(later)).toEqual([doc]);
  });

  it("gets a new identity when the document changes (a goal's status)", () => {
    const changed = completed();
    changed.goals[0].status = 'not-achieved';
    const [other] = documentRefs(sharePrimary(changed, { at: AT, hasTarget: anyTarget }).bundle) as [AnyResource];
    expect(other.identifier[0].value).not.toBe(doc.identifier[0].value);
    expect(other.identifier[0].system).toBe(doc.identifier[0].system);
  });

  it('is sent only once the episode has ended and only when summary is shared', () => {
    const notShared = completed();
    notShared.consent.share = SHARE_CLASSES.filter((c) => c !== 'summary');
    expect(documentRefs(sharePrimary(notShared, { at: AT, hasTarget: anyTarget }).bundle)).toEqual([]);
    const active = completed();
    active.status = 'active';
    delete active.closing;
    delete active.period.end;
    expect(documentRefs(sharePrimary(active, { at: AT, hasTarget: anyTarget }).bundle)).toEqual([]);
    const withdrawn = completed();
    withdrawn.consent.status = 'withdrawn';
    expect(documentRefs(sharePrimary(withdrawn, { at: AT, hasTarget: anyTarget }).bundle)).toEqual([]);
  });

  it("carries the signed document when one is passed in, and it verifies against the bridge's keys", async () => {
    const key = await privateJwk('ES384', 'bridge-1');
    const parsed = parseEpisode(e);
    const signed = await signSummary(summaryToDeliver(parsed, { at: AT, hasTarget: anyTarget })!, { keys: [key] });
    const [d] = documentRefs(sharePrimaryParsed(parsed, { at: AT, hasTarget: anyTarget, summary: signed }).bundle) as [AnyResource];
    expect(await verifySummary(decoded(d), publicJwks({ keys: [key] }))).toBe(true);
    // The version is the document's, whatever the (ECDSA: randomised) signature.
    expect(d.identifier[0].value).toBe(doc.identifier[0].value);
  });

  it('is signed at submission where the bridge has a key', async () => {
    const key = await privateJwk('RS384', 'bridge-2');
    const store = new MemoryStore();
    const job = await submitEpisode(
      e,
      { store, now: () => Date.parse(AT), newId: () => 'job-1' },
      { primaryEndpoint: () => 'http://primary.test/fhir', signingKeys: { keys: [key] } },
    );
    const content = await store.getContent(job.id);
    const [d] = documentRefs(content!.bundles['primary.993778125']!) as [AnyResource];
    expect(await verifySummary(decoded(d), publicJwks({ keys: [key] }))).toBe(true);
  });
});

describe('the leak scan over the delivered document', () => {
  const e = completed();
  it('decodes attachments: the whole output, document included, carries nothing that never crosses', () => {
    const { bundle } = sharePrimary(e, { at: AT, hasTarget: anyTarget });
    expect(scannedText(bundle)).toContain('"resourceType":"Composition"');
    expect(leaks(bundle, e)).toEqual([]);
  });

  it('finds a note planted inside the attached document, which the JSON alone does not show', () => {
    const parsed = parseEpisode(e);
    const document = summaryToDeliver(parsed, { at: AT, hasTarget: anyTarget })!;
    const composition = document.entry?.[0]?.resource as AnyResource;
    composition.section[0].text.div = `<div xmlns="http://www.w3.org/1999/xhtml">${e.sessions[0].note} ${e.parent.phone}</div>`;
    const { bundle } = sharePrimaryParsed(parsed, { at: AT, hasTarget: anyTarget, summary: document });
    // In the JSON alone the text is base64 (at best a prefix of the note's own base64 may show).
    const plain = (text?: string) =>
      leaks(bundle, e, text)
        .map((l) => l.split(':')[0])
        .filter((w) => w === 'note of S1' || w === 'parent phone');
    expect(plain(JSON.stringify(bundle))).toEqual([]);
    expect(plain()).toEqual(['note of S1', 'parent phone']);
  });
});
